@echo off
rem Windows: create the virtualenv, install, load the sample knowledge, serve on the laptop.
rem gunicorn does not run on Windows; Flask's threaded server is plenty for a sandbox test.
setlocal
cd /d "%~dp0\.."

if not exist ".venv\Scripts\python.exe" (
    echo Creating the virtual environment in .venv ...
    py -3 -m venv .venv || python -m venv .venv || goto :no_python
)

echo Installing requirements ...
".venv\Scripts\python.exe" -m pip install --quiet --upgrade pip
".venv\Scripts\python.exe" -m pip install --quiet -r requirements.txt || goto :failed

if not exist ".env" (
    echo No .env yet: copying .env.example. Add your keys there when you have them.
    copy ".env.example" ".env" >nul
)

echo Loading the sample knowledge (unchanged files are skipped) ...
".venv\Scripts\python.exe" -m flask --app app ingest knowledge\sample || goto :failed

rem The port the app will serve on, as it reads it (environment, .env, else 8000).
set BOT_PORT=
for /f "usebackq delims=" %%p in (`".venv\Scripts\python.exe" scripts\serving_port.py`) do set BOT_PORT=%%p
if "%BOT_PORT%"=="" goto :failed

echo.
echo The bot is starting on http://127.0.0.1:%BOT_PORT%
echo Try it from another window:
echo     .venv\Scripts\flask --app app chat "@agent who attended the UNEA meeting?"
echo To reach it from your phone (docs\TWILIO_SETUP.md):
echo     1. ngrok http %BOT_PORT%
echo     2. In .env set PUBLIC_BASE_URL=https://YOUR-NGROK-HOST, TWILIO_AUTH_TOKEN=...
echo        and ALLOWED_SENDERS=+YOUR-NUMBER, each tester who joined the sandbox
echo     3. In the Twilio sandbox set "When a message comes in" to
echo        https://YOUR-NGROK-HOST/whatsapp/webhook (HTTP POST), then restart this script.
echo.
".venv\Scripts\python.exe" app.py
goto :eof

:no_python
echo Python 3.11 or newer was not found. Install it from python.org and tick "Add to PATH".
exit /b 1

:failed
echo Something failed above; the message just before this line says what.
exit /b 1
