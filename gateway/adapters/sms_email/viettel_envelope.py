"""Viettel's wsCpMt envelope built once, filled per message; its answer read without zeep.

zeep builds a call by walking the WSDL's schema for every message (about a millisecond of CPU each). The shape
of a wsCpMt call never changes between messages: only RequestID, the number, the text and its content type do.
So zeep builds the envelope once, with a marker in each of those fields, and a message is that envelope with its
values put in place of the markers, escaped as lxml escapes text. zeep stays the referee: the conformance test
(tests/conformance/test_viettel_sms.py) compares the filled envelope byte for byte with the one zeep builds for
the same values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import zeep
from lxml import etree
from zeep.wsdl.utils import etree_to_string

from gateway.adapters.base import RetryableError

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OPERATION = "wsCpMt"
PER_MESSAGE = ("RequestID", "UserID", "ReceiverID", "Content", "ContentType")  # the rest is the account's

# Characters XML 1.0 allows (lxml refuses the others, so zeep fails on them: the hot path must too).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# What libxml2 escapes in text written as UTF-8: the markup characters and CR (a literal CR would be read back
# as LF by any XML parser). Quotes stay as they are in text.
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
_TO_ESCAPE = re.compile("[&<>\r]")
# No DTDs, no entities, no network: the answer comes from outside.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def xml_text(value: str) -> bytes:
    """`value` as lxml writes it as element text in UTF-8; ValueError, as lxml, if XML cannot hold it."""
    if _NOT_XML.search(value):
        raise ValueError("All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control characters")
    return _TO_ESCAPE.sub(lambda m: _ESCAPES[m.group()], value).encode()


@dataclass(frozen=True)
class EnvelopeForm:
    """The envelope of one operation with its per-message fields left open, and where to send it."""

    address: str
    headers: Mapping[str, str]
    parts: tuple[bytes, ...]  # the envelope's bytes between the open fields
    fields: tuple[str, ...]  # the open fields, in the order they come
    answer: str  # the answer's wrapper element, {namespace}name, as the WSDL names it

    @classmethod
    def from_zeep(cls, client: zeep.Client, fixed: Mapping[str, str]) -> EnvelopeForm:
        """zeep's own envelope for `fixed` values and a marker in each per-message field, cut at the markers."""
        markers = {name: f"@@gateway-field-{name}@@" for name in PER_MESSAGE}
        envelope = client.create_message(client.service, OPERATION, **fixed, **markers)
        whole = etree_to_string(envelope)  # what zeep's transport posts (Transport.post_xml)
        cut = re.split(b"(" + b"|".join(re.escape(m.encode()) for m in markers.values()) + b")", whole)
        by_marker = {m.encode(): name for name, m in markers.items()}
        operation = client.service._binding.get(OPERATION)  # zeep has no public handle on the binding's operation
        return cls(address=client.service._binding_options["address"],
                   headers={"SOAPAction": f'"{operation.soapaction or ""}"', "Content-Type": "text/xml; charset=utf-8"},
                   parts=tuple(cut[0::2]), fields=tuple(by_marker[m] for m in cut[1::2]),
                   answer=operation.output.body.qname.text)

    def fill(self, values: Mapping[str, str]) -> bytes:
        """The envelope of one message: its values, escaped, in their places."""
        out = [self.parts[0]]
        for name, part in zip(self.fields, self.parts[1:], strict=True):
            out += (xml_text(values[name]), part)
        return b"".join(out)

    def read_answer(self, status: int, content: bytes) -> tuple[int, str]:
        """(result, message) of a wsCpMt answer; RetryableError for a SOAP Fault or anything not an answer (as
        zeep's SoapBinding.process_reply: no content, not XML, a Fault, an HTTP status other than 200)."""
        if not content:
            raise RetryableError(f"viettel: HTTP {status} with no content")
        try:
            root = etree.fromstring(content, _PARSER)
        except etree.XMLSyntaxError as exc:
            raise RetryableError(f"viettel: HTTP {status}, not XML: {exc}") from None
        fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
        if fault is not None:
            raise RetryableError(f"viettel: SOAP fault: {fault.findtext('faultstring') or ''}")
        answer = root.find(f"{{{SOAP_ENV}}}Body/{self.answer}/return")
        if status != 200 or answer is None:
            raise RetryableError(f"viettel: HTTP {status}, no {OPERATION} answer")
        result = (answer.findtext("result") or "").strip()
        if result and not result.lstrip("-").isdigit():  # xs:int: zeep would fail to read it
            raise RetryableError(f"viettel: result {result[:20]!r} is not a number")
        return int(result or 0), answer.findtext("message") or ""
