"""Every text the bot sends to a user, in one place (a leaf: web, chat and answer use it)."""

# Chat commands (bot/chat/commands.py, runner.py)
HELP_TEXT = (
    "*Hi! I answer questions from your team's knowledge base.*\n"
    "Ask me anything after {trigger}, for example:\n"
    "_{trigger} what did we decide about the UK timeline?_\n\n"
    "Commands:\n"
    "• *{trigger} help*: this message\n"
    "• *{trigger} reset*: forget our conversation so far\n"
    "• *{trigger} sources*: where my last answer came from\n"
    "• *{trigger} stats*: how much you have asked me\n"
    "• *{trigger} feedback <text>*: tell the team what to improve\n"
    "• 👍 or 👎 right after an answer: rate it\n"
    "• *{trigger} forget me*: delete everything I keep about you"
)
MENTION_HINT = "Mention me with {trigger} to ask a question, e.g. _{trigger} help_."
MEDIA_REPLY = (
    "I can only read text and listen to voice notes. Please type your question after "
    "{trigger}, or ask it in a voice note."
)
FEEDBACK_THANKS = "Thanks! I've passed your feedback on to the team."
FEEDBACK_HOW = "Tell me what to pass on, e.g. _{trigger} feedback the answers are too long_."
RATED = {
    "up": "Thanks for the 👍!",
    "down": (
        "Thanks for telling me. Say what was wrong with _{trigger} feedback <text>_ "
        "and the team will look into it."
    ),
}
NOTHING_TO_RATE = (
    "Thanks! I haven't answered you recently, so there is nothing to rate. "
    "To tell the team something, send _{trigger} feedback <text>_."
)
FORGET_ASK = (
    "This deletes our conversation, your feedback and the answers I cached for your "
    "questions. Your question counts stay, without your number.\n"
    "To confirm, send *{trigger} forget me yes* within {minutes} minutes."
)
FORGET_DONE = (
    "Done: I've deleted everything I kept about you. Your question counts stay, without "
    "your number."
)
MEMORY_DOWN = "I can't reach my conversation memory right now. Please try again in a minute."
RESET_DONE = "Done: I've forgotten our conversation. Ask me something new!"

# Voice notes (bot/chat/voice.py): what was heard heads the answer; each failure gets one
# short reply instead.
VOICE_HEARD = '🎤 "{transcript}"'
VOICE_OFF = (
    "I can't listen to voice notes on this number yet. Please type your question after {trigger}."
)
VOICE_UNAVAILABLE = (
    "I couldn't download your voice note. Please send it again, or type your question "
    "after {trigger}."
)
VOICE_FAILED = (
    "I couldn't transcribe your voice note just now. Please try again in a minute, or type "
    "your question after {trigger}."
)
VOICE_EMPTY = (
    "I couldn't make out any words in your voice note. Please try again, or type your "
    "question after {trigger}."
)

# The use case's own replies (bot/chat/conversation.py)
SORRY = "Sorry, something went wrong on my side. Please try again in a minute."
KNOWLEDGE_DOWN = (
    "The knowledge base is unavailable right now, so I can't look that up. "
    "Please try again in a few minutes."
)
TRUNCATED_NOTE = "_(Your question was long, so I only read its first {n} characters.)_"

# Access (bot/chat/access.py)
REFUSED = (
    "Sorry, this bot only answers members of its team. Your number {number} is not on "
    'its list yet: ask the bot\'s admin to add "{number}" to whatsapp.allowed_senders '
    "in config.json."
)

# Documents from the phone (bot/chat/documents.py, add_outcomes.py): admins add a file
# with the caption "{trigger} add"; everyone else gets the refusal.
DOCUMENT_REFUSED = (
    "Sorry, only the bot's admins can add documents to the knowledge base, so I haven't "
    "kept this one. Please type your question instead."
)
DOCUMENT_HINT = (
    "To add this document to the knowledge base, send it again with the caption "
    "*{trigger} add*, optionally followed by its title."
)
DOCUMENT_ADDED = "Added {title}: {passages}"
DOCUMENT_UPDATED = "Updated {title}: {passages} (the earlier version is replaced)"
DOCUMENT_UNCHANGED = "{title} is already in the knowledge base."
# The same, once collections say who reads what (or the caption named one: "add #board").
DOCUMENT_ADDED_TO = "Added {title} to {collection}: {passages}"
DOCUMENT_UPDATED_IN = (
    "Updated {title} in {collection}: {passages} (the earlier version is replaced)"
)
DOCUMENT_UNCHANGED_IN = "{title} is already in the knowledge base, in {collection}."
DOCUMENT_MOVED = "Moved {title} from {previous} to {collection} (its content is unchanged)."
DOCUMENT_NO_SUCH_COLLECTION = (
    "There is no collection #{name}, so I haven't added this document. The collections are {names}."
)
DOCUMENT_BAD_COLLECTION = (
    "#{name} can't name a collection (lower-case letters, digits, - and _, such as #board), "
    "so I haven't added this document."
)
DOCUMENT_ADDING = "Adding {title}… I'll tell you how it went with your next reply."
DOCUMENT_STILL_ADDING = "Still adding {title}…"
DOCUMENT_UNFINISHED = "Adding {title} did not finish (I may have restarted). Please send it again."
DOCUMENT_FAILED = "I couldn't add {title}: {reason}."
DOCUMENT_STORE_DOWN = (
    "I couldn't add {title}: the knowledge base is unavailable right now. "
    "Please send it again in a few minutes."
)
DOCUMENT_TOO_LARGE = "That document is too large to add here: the limit is {mb} MB."
DOCUMENT_WRONG_TYPE = (
    "That file's content doesn't match its type, so I haven't added it. I can add PDF, "
    "Word (.docx), text and Markdown files."
)
DOCUMENT_UNSUPPORTED = "I can add PDF, Word (.docx), text and Markdown files, not this kind."
DOCUMENT_NOT_DOWNLOADED = "I couldn't download that document. Please send it again in a minute."
UNTITLED_DOCUMENT = "WhatsApp document {date}"
SOME_DOCUMENT = "your document"  # while the title is not known yet

# The web layer (bot/web/limits.py, twiml.py)
RATE_LIMIT_NOTICE = (
    "You're sending messages faster than I can answer. Please wait a minute and ask again."
)
REPLY_SHORTENED = "\n\n(Answer shortened; ask a narrower question for more.)"

# A question the knowledge base does not cover: the use case's reply when retrieval finds
# no relevant passage (never a model's guess), and extractive answers' with nothing to quote.
NOTHING_FOUND = (
    "The knowledge base doesn't seem to cover that, so I won't guess. "
    "Try other keywords, or ask about a meeting, a person or a decision."
)

# Extractive answers (bot/answer/extractive.py)
EXCERPTS_INTRO = "Here is what I found in the knowledge base (excerpts, no AI summary):"
MODEL_UNAVAILABLE = "The AI answer is unavailable right now, so here are the closest excerpts."
