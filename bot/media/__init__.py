"""Inbound media: Twilio's media download (credentials to Twilio's API host only, capped,
typed by its bytes, bounded by the request's Deadline). Raises MediaUnavailable."""

from bot.media.download import MediaFile, TwilioMedia
from bot.media.kinds import AUDIO_MAX_BYTES, DOCUMENT_MAX_BYTES, kind_of

__all__ = ["AUDIO_MAX_BYTES", "DOCUMENT_MAX_BYTES", "MediaFile", "TwilioMedia", "kind_of"]
