"""MistralOcr: Mistral's OCR API through the real SDK against the local stand-in."""

from __future__ import annotations

import base64
import time

import pytest

from bot.answer.mistral import MistralOcr
from bot.answer.mistral import ocr as mistral_ocr
from bot.deadline import Deadline
from bot.errors import ModelFailed
from tests.support import API_KEY

PDF = b"%PDF-1.7 a scan, as far as the stand-in cares"


@pytest.fixture
def ocr(adapter) -> MistralOcr:
    return adapter(MistralOcr)


def test_the_document_goes_inline_and_each_page_comes_back_in_order(stub, ocr) -> None:
    stub.ocr_pages = ["# Receipts", "", "Hotel: 300 euros."]
    assert ocr.read_pdf(PDF, 3, Deadline(10)) == ["# Receipts", "", "Hotel: 300 euros."]
    (request,) = stub.ocr_requests
    encoded = base64.b64encode(PDF).decode()
    assert request["document"] == {
        "type": "document_url",
        "document_url": f"data:application/pdf;base64,{encoded}",
    }
    assert (request["model"], request["include_image_base64"]) == ("mistral-ocr-latest", False)
    assert stub.requests[0].authorization == f"Bearer {API_KEY}"
    assert "sk-" not in repr(ocr)


def test_pages_are_placed_by_index_and_missing_ones_are_empty(stub, ocr) -> None:
    stub.ocr_pages = ["first", "second"]
    assert ocr.read_pdf(PDF, 3, Deadline(10)) == ["first", "second", ""]
    assert ocr.read_pdf(PDF, 1, Deadline(10)) == ["first"]  # an index past the end is dropped


def test_a_503_is_retried_within_the_deadline(stub, ocr) -> None:
    stub.statuses = [503]
    stub.retry_after = 0.1
    stub.ocr_pages = ["text"]
    assert ocr.read_pdf(PDF, 1, Deadline(10)) == ["text"]
    assert len(stub.ocr_requests) == 2


def test_a_refused_document_fails_with_a_short_reason(stub, ocr) -> None:
    stub.statuses = [422]
    with pytest.raises(ModelFailed) as caught:
        ocr.read_pdf(PDF, 1, Deadline(10))
    assert caught.value.reason == "http 422" and len(stub.ocr_requests) == 1


def test_a_slow_api_fails_at_the_deadline(stub, ocr, monkeypatch) -> None:
    monkeypatch.setattr(mistral_ocr, "MIN_OCR_SECONDS", 0.2)
    stub.delay = 5.0
    started = time.monotonic()
    with pytest.raises(ModelFailed) as caught:
        ocr.read_pdf(PDF, 1, Deadline(0.8))
    assert caught.value.reason == "timeout"
    assert time.monotonic() - started < 1.5


def test_too_little_time_left_makes_no_request(stub, ocr) -> None:
    with pytest.raises(ModelFailed):
        ocr.read_pdf(PDF, 1, Deadline(mistral_ocr.MIN_OCR_SECONDS / 2))
    assert stub.ocr_requests == []
