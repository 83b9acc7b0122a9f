"""The WhatsApp knowledge bot: create_app() builds the Flask application."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask

from bot.settings import ConfigError, Settings, load_settings, with_overrides

if TYPE_CHECKING:
    from bot.answer.base import Answerer
    from bot.embedding import Embedder
    from bot.history.store import HistoryStore
    from bot.knowledge.store import KnowledgeStore
    from bot.ocr import Ocr
    from bot.transcription import Transcriber

logger = logging.getLogger(__name__)


def create_app(
    config_override: Mapping[str, Any] | Settings | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    history: HistoryStore | None = None,
    knowledge: KnowledgeStore | None = None,
    answerer: Answerer | None = None,
    embedder: Embedder | None = None,
    ocr: Ocr | None = None,
    transcriber: Transcriber | None = None,
) -> Flask:
    """Build the app: settings, logging, stores, answerer, web app and CLI. Components
    passed in (tests, tools) are used instead of the ones the settings would build."""
    from bot.answer import build_answerer, build_embedder
    from bot.chat.add_outcomes import AddOutcomes
    from bot.chat.conversation import ConversationHandler
    from bot.chat.documents import DocumentInbox
    from bot.chat.media import MediaInbox
    from bot.chat.voice import VoiceQuestions
    from bot.history import open_history_store
    from bot.knowledge import open_knowledge_store
    from bot.logs import configure_logging
    from bot.media import TwilioMedia
    from bot.metrics import Metrics
    from bot.ops.cli import register_cli
    from bot.web.app import build_web_app
    from bot.web.security import local_token
    from bot.web.services import Services

    if isinstance(config_override, Settings):
        settings = config_override
    else:
        settings = with_overrides(load_settings(environ), config_override or {})
    configure_logging(settings)
    for warning in settings.warnings:
        logger.warning("config: %s", warning)
    if settings.local_mode:
        logger.warning(
            "local mode: no TWILIO_AUTH_TOKEN, so signatures cannot be checked; "
            "serving loopback clients only and treating every sender as allowed"
        )
    try:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{settings.origin('DATA_DIR')}: DATA_DIR = {settings.data_dir!r}: expected a "
            f"directory the bot can create and write ({exc.strerror or type(exc).__name__})"
        ) from None
    history = history or open_history_store(settings)
    if knowledge is None:
        embedder = embedder or build_embedder(
            settings.mistral_api_key or None, settings.mistral_server_url or None
        )
        knowledge = open_knowledge_store(settings, embedder)
    answerer = answerer or build_answerer(
        settings.mistral_api_key or None,
        settings.mistral_model,
        settings.mistral_server_url or None,
        threads=settings.gunicorn_threads,
    )
    if ocr is None and settings.mistral_api_key:  # for `ingest` to read scanned PDFs
        from bot.answer.mistral.ocr import MistralOcr

        ocr = MistralOcr(settings.mistral_api_key, settings.mistral_server_url or None)
    if transcriber is None and settings.mistral_api_key:  # for voice notes
        from bot.answer.mistral.transcriber import MistralTranscriber

        transcriber = MistralTranscriber(
            settings.mistral_api_key,
            settings.mistral_server_url or None,
            settings.mistral_transcription_model,
        )
    metrics = Metrics()
    # --- Media routes (bot/chat/media.py): the one place the inbox and its routes are built.
    downloads = TwilioMedia.from_settings(settings)
    outcomes = AddOutcomes.in_data_dir(settings.data_dir)
    media = MediaInbox(
        settings.trigger_words[0],
        # A voice note is answered by the handler's typed path; `handler` is bound just
        # below, before any message can arrive.
        voice=VoiceQuestions(
            settings,
            downloads,
            transcriber,
            ask=lambda msg, question, deadline: handler.ask(msg, question, deadline),
            # The people of the documents the sender may read, as spelling hints (the API
            # takes 100).
            names=lambda msg, deadline: knowledge.people(
                100, deadline, settings.readers.readable(msg.sender, msg.is_group)
            ),
        ),
        # An admin's document with the caption "add" is ingested (scans read by `ocr`);
        # what became of one that outlived its reply heads their next reply.
        document=DocumentInbox(settings, knowledge, downloads, outcomes, ocr=ocr),
    )
    # --- end of media routes.
    handler = ConversationHandler(
        settings, history, knowledge, answerer, metrics, media=media, outcomes=outcomes
    )
    services = Services(
        settings,
        history,
        knowledge,
        answerer,
        metrics,
        handler,
        handler.access,
        ocr=ocr,
        transcriber=transcriber,
    )
    if settings.local_mode:
        services.local_token = local_token(settings.data_dir)
    app = build_web_app(services)
    register_cli(app)
    return app
