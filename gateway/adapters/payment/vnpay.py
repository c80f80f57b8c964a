"""VNPay: a signed pay URL (no call needed to start), the IPN callback, and querydr for reconciliation."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.adapters.base import PermanentError, PerThreadHttp, RetryableError, send
from gateway.domain.dossier import VN_TZ
from gateway.domain.vietnamese_text import without_diacritics

from . import vnpay_signature as sig
from .base import (
    Answer,
    Callback,
    CallbackVerdict,
    PaymentProvider,
    PaymentRequest,
    ProviderState,
    Started,
    Status,
)

VERSION = "2.1.0"
TIME = "%Y%m%d%H%M%S"

# vnp_TransactionStatus (IPN and querydr) to our states.
TRANSACTION_STATES: dict[str, ProviderState] = {"00": ProviderState.PAID, "01": ProviderState.PENDING,
                                               "02": ProviderState.CANCELLED}
VERDICT_CODES: dict[CallbackVerdict, str] = {
    CallbackVerdict.APPLIED: sig.IPN_OK,
    CallbackVerdict.ALREADY_APPLIED: sig.IPN_ALREADY_CONFIRMED,
    CallbackVerdict.UNKNOWN_REFERENCE: sig.IPN_NOT_FOUND,
    CallbackVerdict.WRONG_AMOUNT: sig.IPN_BAD_AMOUNT,
    CallbackVerdict.BAD_SIGNATURE: sig.IPN_BAD_SIGNATURE,
    CallbackVerdict.ERROR: sig.IPN_OTHER,
}
# Characters VNPay's demos (PHP urlencode, Java URLEncoder in US-ASCII, .NET WebUtility.UrlEncode) all encode
# alike; vnp_OrderInfo keeps only these, so whichever encoder VNPay's side runs, the hash is the same.
ORDER_INFO_UNSAFE = re.compile(r"[^A-Za-z0-9 ,.:/_#-]")
QUERY_FIELDS = ("vnp_RequestId", "vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_TxnRef", "vnp_TransactionDate",
                "vnp_CreateDate", "vnp_IpAddr", "vnp_OrderInfo")
QUERY_REPLY_FIELDS = ("vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode",
                      "vnp_TxnRef", "vnp_Amount", "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo",
                      "vnp_TransactionType", "vnp_TransactionStatus", "vnp_OrderInfo", "vnp_PromotionCode",
                      "vnp_PromotionAmount")


def _pipe_hash(data: Mapping[str, Any], fields: tuple[str, ...], secret: str) -> str:
    text = "|".join("" if data.get(f) is None else str(data.get(f)) for f in fields)
    return hmac.new(secret.encode(), text.encode(), hashlib.sha512).hexdigest()


class VNPay(PaymentProvider):
    name = "vnpay"

    def __init__(self, *, base_url: str, tmn_code: str, secret: str, return_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.tmn_code = tmn_code
        self.secret = secret
        self.return_url = return_url
        self.timeout = timeout
        self._http = PerThreadHttp(abandon_after=timeout)

    def start(self, request: PaymentRequest) -> Started:
        params = {
            "vnp_Version": VERSION, "vnp_Command": "pay", "vnp_TmnCode": self.tmn_code,
            "vnp_Amount": str(sig.to_vnpay_amount(request.amount)), "vnp_CurrCode": "VND",
            "vnp_TxnRef": request.reference, "vnp_OrderType": "other",
            "vnp_OrderInfo": order_info(request.description),
            "vnp_Locale": "vn", "vnp_ReturnUrl": self.return_url, "vnp_IpAddr": request.client_ip,
            "vnp_CreateDate": request.at.astimezone(VN_TZ).strftime(TIME),
        }
        # As vnpay_create_payment.php builds it: the signed query, then the hash.
        query = f"{sig.hash_data(params)}&vnp_SecureHash={sig.secure_hash(params, self.secret)}"
        return Started(f"{self.base_url}/paymentv2/vpcpay.html?{query}")

    def query(self, reference: str, *, created_at: datetime) -> Status:
        now = datetime.now(VN_TZ).strftime(TIME)
        body = {"vnp_RequestId": uuid.uuid4().hex[:32], "vnp_Version": VERSION, "vnp_Command": "querydr",
                "vnp_TmnCode": self.tmn_code, "vnp_TxnRef": reference, "vnp_OrderInfo": f"Truy van {reference}",
                "vnp_TransactionDate": created_at.astimezone(VN_TZ).strftime(TIME), "vnp_CreateDate": now,
                "vnp_IpAddr": "127.0.0.1"}
        body["vnp_SecureHash"] = _pipe_hash(body, QUERY_FIELDS, self.secret)
        response = send(self._http.session(), "POST", f"{self.base_url}/merchant_webapi/api/transaction",
                        "VNPay querydr", timeout=self.timeout, json=body)
        try:
            reply = response.json()
        except ValueError:
            raise RetryableError("VNPay querydr: answer is not JSON") from None
        if not isinstance(reply, dict) or not hmac.compare_digest(
                str(reply.get("vnp_SecureHash", "")).lower(), _pipe_hash(reply, QUERY_REPLY_FIELDS, self.secret)):
            raise RetryableError("VNPay querydr: answer fails its signature check")
        code = str(reply.get("vnp_ResponseCode"))
        if code == "91":
            return Status(ProviderState.UNKNOWN)
        if code != "00":
            error = RetryableError if code == "99" else PermanentError
            raise error(f"VNPay querydr: vnp_ResponseCode {code}: {reply.get('vnp_Message')!r}")
        return Status(TRANSACTION_STATES.get(str(reply.get("vnp_TransactionStatus")), ProviderState.UNKNOWN),
                      _amount(reply.get("vnp_Amount")), reply.get("vnp_TransactionNo"))

    def read_callback(self, data: Mapping[str, Any]) -> Callback:
        params = {k: str(v) for k, v in data.items()}
        # vnpay_ipn.php: paid only when both codes are 00; any other IPN is a failed payment (its Status 2),
        # except vnp_TransactionStatus 01, "Giao dịch chưa hoàn tất", which leaves it open.
        paid = params.get("vnp_ResponseCode") == "00" and params.get("vnp_TransactionStatus") == "00"
        status = params.get("vnp_TransactionStatus")
        state = (ProviderState.PAID if paid else ProviderState.PENDING if status == "01"
                 else ProviderState.CANCELLED)
        return Callback(
            authentic=sig.verify(params, self.secret) and params.get("vnp_TmnCode") == self.tmn_code,
            reference=params.get("vnp_TxnRef"), amount=_amount(params.get("vnp_Amount")), state=state,
            transaction_id=params.get("vnp_TransactionNo"), raw=params,
        )

    def answer(self, callback: Callback, verdict: CallbackVerdict) -> Answer:
        code = VERDICT_CODES[verdict]
        return Answer(200, {"RspCode": code, "Message": sig.IPN_MESSAGES[code]})


def order_info(description: str) -> str:
    """vnp_OrderInfo: Vietnamese without diacritics (VNPay's rule), and none of the characters its demos
    encode differently; never empty."""
    text = ORDER_INFO_UNSAFE.sub(" ", without_diacritics(description))
    return " ".join(text.split())[:255] or "Thanh toan"


def _amount(raw: Any) -> int | None:
    try:
        return sig.from_vnpay_amount(str(raw))
    except ValueError:
        return None
