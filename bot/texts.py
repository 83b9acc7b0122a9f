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
MEDIA_REPLY = "I can only read text messages for now. Please type your question after {trigger}."
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
