"""In-process fakes of our own protocols, one module per kind: answerers, knowledge,
history, clock, transcriber; and local HTTP stand-ins: mistral_server (Mistral's API),
twilio_media (Twilio's media endpoint and the CDN it redirects to)."""
