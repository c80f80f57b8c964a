"""What the facts about a PDF signature mean, in the vocabulary of ETSI EN 319 102-1, and in Vietnamese.

The verifier (gateway/signature) establishes facts: is the signed range intact, is the signature value
right, does the certificate chain to a configured root, was the document changed after signing. This
module turns them into one indication and sub-indication by a table of rules, first match wins, and says
it in a sentence an officer (Vietnamese) and an auditor (English) can read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Indication(StrEnum):
    TOTAL_PASSED = "TOTAL_PASSED"
    INDETERMINATE = "INDETERMINATE"
    TOTAL_FAILED = "TOTAL_FAILED"
    NO_SIGNATURE_FOUND = "NO_SIGNATURE_FOUND"  # a document without any signature


# Worst first: a document is as good as its worst signature.
SEVERITY = {Indication.TOTAL_FAILED: 3, Indication.INDETERMINATE: 2, Indication.TOTAL_PASSED: 1,
            Indication.NO_SIGNATURE_FOUND: 0}

# pyHanko's ModificationLevel, and what it means to a reader.
MODIFICATIONS = {
    "NONE": ("không có thay đổi", "no change"),
    "LTA_UPDATES": ("chỉ bổ sung dữ liệu kiểm tra chứng thư và dấu thời gian",
                    "only validation data and timestamps were added"),
    "FORM_FILLING": ("điền biểu mẫu hoặc thêm chữ ký khác", "form filling or another signature was added"),
    "ANNOTATIONS": ("thêm ghi chú", "annotations were added"),
    "OTHER": ("nội dung bị thay đổi", "the content was changed"),
}


@dataclass(frozen=True)
class SignatureFacts:
    intact: bool  # the signed byte range hashes to the signed digest
    valid: bool  # the signature value verifies with the signer's key
    trusted: bool  # the certificate chains to a configured root, usable for signing, not revoked
    revoked: bool
    revoked_before_signing: bool  # revoked before the (timestamped, else claimed) signing time
    trust_problem: str | None  # pyHanko's AdES sub-indication for a trust problem, e.g. "EXPIRED"
    trust_problem_failed: bool  # ...and whether ETSI counts it as FAILED (else INDETERMINATE)
    chain_found: bool
    self_signed: bool
    weak_algorithm: bool  # e.g. SHA-1: the signature may verify, but proves nothing today
    coverage: str | None  # ENTIRE_FILE, ENTIRE_REVISION, CONTIGUOUS_BLOCK_FROM_START, UNCLEAR
    modification: str | None  # a key of MODIFICATIONS; None: could not be determined
    docmdp_ok: bool | None  # the changes are within what the certifying signature allowed


@dataclass(frozen=True)
class Verdict:
    indication: Indication
    sub_indication: str | None
    vi: str
    en: str


def _changed_unlawfully(f: SignatureFacts) -> bool:
    return f.docmdp_ok is False or f.modification == "OTHER" or f.coverage in ("UNCLEAR", None)


Rule = tuple[Callable[[SignatureFacts], bool], Indication, Callable[[SignatureFacts], str | None], str, str]
# (applies?, indication, sub-indication, Vietnamese, English). `{signer}` and `{problem}` are filled in.
RULES: list[Rule] = [
    (lambda f: not f.intact, Indication.TOTAL_FAILED, lambda f: "HASH_FAILURE",
     "Chữ ký của {signer} không hợp lệ: tài liệu đã bị sửa trong phần được ký.",
     "The signature of {signer} is invalid: the signed part of the document was altered."),
    (lambda f: f.weak_algorithm, Indication.INDETERMINATE, lambda f: "CRYPTO_CONSTRAINTS_FAILURE",
     "Chữ ký của {signer} dùng thuật toán yếu (như SHA-1), không còn được chấp nhận.",
     "The signature of {signer} uses a weak algorithm (such as SHA-1) that is no longer accepted."),
    (lambda f: not f.valid, Indication.TOTAL_FAILED, lambda f: "SIG_CRYPTO_FAILURE",
     "Chữ ký của {signer} không hợp lệ: giá trị chữ ký không khớp với chứng thư số.",
     "The signature of {signer} is invalid: the signature value does not verify with the certificate."),
    (lambda f: f.revoked and f.revoked_before_signing, Indication.TOTAL_FAILED, lambda f: "REVOKED",
     "Chữ ký của {signer} không hợp lệ: chứng thư số đã bị thu hồi trước thời điểm ký.",
     "The signature of {signer} is invalid: the certificate was revoked before the signing time."),
    (_changed_unlawfully, Indication.TOTAL_FAILED, lambda f: "FORMAT_FAILURE",
     "Tài liệu đã bị thay đổi sau khi {signer} ký ({change}).",
     "The document was changed after {signer} signed it ({change_en})."),
    (lambda f: f.self_signed and not f.trusted, Indication.INDETERMINATE, lambda f: "NO_CERTIFICATE_CHAIN_FOUND",
     "Không xác định được chữ ký của {signer}: chứng thư số tự ký, không do tổ chức chứng thực nào cấp.",
     "The signature of {signer} cannot be confirmed: its certificate is self-signed, issued by no CA."),
    (lambda f: not f.chain_found, Indication.INDETERMINATE, lambda f: "NO_CERTIFICATE_CHAIN_FOUND",
     "Không xác định được chữ ký của {signer}: chứng thư số không thuộc tổ chức chứng thực tin cậy nào.",
     "The signature of {signer} cannot be confirmed: its certificate does not chain to a trusted root."),
    (lambda f: f.trust_problem_failed, Indication.TOTAL_FAILED, lambda f: f.trust_problem,
     "Chữ ký của {signer} không hợp lệ: {problem_vi}.",
     "The signature of {signer} is invalid: {problem_en}."),
    (lambda f: f.trust_problem is not None, Indication.INDETERMINATE, lambda f: f.trust_problem,
     "Không xác định được chữ ký của {signer}: {problem_vi}.",
     "The signature of {signer} cannot be confirmed: {problem_en}."),
    (lambda f: not f.trusted, Indication.INDETERMINATE, lambda f: "CHAIN_CONSTRAINTS_FAILURE",
     "Không xác định được chữ ký của {signer}: chứng thư số không đáp ứng yêu cầu.",
     "The signature of {signer} cannot be confirmed: the certificate does not meet the requirements."),
    (lambda f: True, Indication.TOTAL_PASSED, lambda f: None,
     "Chữ ký của {signer} hợp lệ; {change}.",
     "The signature of {signer} is valid; {change_en}."),
]

# What a trust problem means, for the sentence above.
PROBLEMS = {
    "EXPIRED": ("chứng thư số đã hết hạn tại thời điểm ký", "the certificate had expired at the signing time"),
    "OUT_OF_BOUNDS_NO_POE": ("chứng thư số hết hạn hoặc bị thu hồi và không có bằng chứng thời điểm ký",
                             "the certificate expired or was revoked, with no proof of the signing time"),
    "NOT_YET_VALID": ("chứng thư số chưa có hiệu lực tại thời điểm ký", "the certificate was not yet valid"),
    "REVOKED_NO_POE": ("chứng thư số đã bị thu hồi", "the certificate was revoked"),
    "REVOKED_CA_NO_POE": ("chứng thư của tổ chức cấp đã bị thu hồi", "an issuing CA's certificate was revoked"),
    "TRY_LATER": ("chưa có thông tin thu hồi chứng thư số", "no revocation data is available yet"),
    "CHAIN_CONSTRAINTS_FAILURE": ("chứng thư số không đáp ứng ràng buộc của chuỗi chứng thực",
                                  "the certificate chain does not meet its constraints"),
    "SIG_CONSTRAINTS_FAILURE": ("chứng thư số không được phép dùng để ký", "the certificate may not sign"),
    "CERTIFICATE_CHAIN_GENERAL_FAILURE": ("không kiểm tra được chuỗi chứng thực",
                                          "the certificate chain could not be checked"),
}

NOTHING_SIGNED = Verdict(Indication.NO_SIGNATURE_FOUND, None, "Tài liệu không có chữ ký số.",
                         "The document has no digital signature.")


def judge(facts: SignatureFacts, signer: str) -> Verdict:
    change_vi, change_en = MODIFICATIONS.get(facts.modification or "", ("không rõ có thay đổi hay không",
                                                                        "whether it changed is unknown"))
    problem_vi, problem_en = PROBLEMS.get(facts.trust_problem or "", (facts.trust_problem or "", ""))
    words = {"signer": signer, "change": change_vi, "change_en": change_en, "problem_vi": problem_vi,
             "problem_en": problem_en or (facts.trust_problem or "").lower().replace("_", " ")}
    for applies, indication, sub, vi, en in RULES:
        if applies(facts):
            return Verdict(indication, sub(facts), vi.format(**words), en.format(**words))
    raise AssertionError("the last rule always applies")


def of_document(verdicts: list[Verdict]) -> Verdict:
    """A document is as good as its worst signature; its sentence counts them."""
    if not verdicts:
        return NOTHING_SIGNED
    worst = max(verdicts, key=lambda v: SEVERITY[v.indication])
    good = sum(v.indication is Indication.TOTAL_PASSED for v in verdicts)
    if worst.indication is Indication.TOTAL_PASSED:
        return Verdict(worst.indication, None, f"Tất cả {len(verdicts)} chữ ký số hợp lệ.",
                       f"All {len(verdicts)} signature(s) are valid.")
    return Verdict(worst.indication, worst.sub_indication,
                   f"{good}/{len(verdicts)} chữ ký số hợp lệ. {worst.vi}",
                   f"{good} of {len(verdicts)} signature(s) valid. {worst.en}")
