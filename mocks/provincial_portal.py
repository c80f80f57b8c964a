"""What the provincial portal sends: a sample dossier, shared by the test suite and the benchmark."""

from __future__ import annotations

from typing import Any


def sample_dossier(code: str) -> dict[str, Any]:
    """A birth registration (level 4, result by post) as POST /api/v1/dossiers takes it."""
    return {
        "code": code,
        "procedure_code": "1.003560.000.00.00.H56",
        "procedure_name": "Đăng ký khai sinh",
        "level": "toan_trinh",
        "applicant": {
            "type": 1,
            "full_name": "Nguyễn Thị Hồng Nhung",
            "id_number": "001190012345",
            "phone": "0912345678",
            "email": "nhung@example.vn",
            "address": {"province": "Hà Nội", "commune": "Phường Ba Đình", "street": "12 Phố Điện Biên Phủ"},
        },
        "summary": "Đăng ký khai sinh cho con",
        "submitted_at": "2024-07-25T09:15:00+07:00",
        "channel": 2,
        "delivery_method": "post",
        "fees": [{"code": "LPKS", "name": "Lệ phí đăng ký khai sinh", "amount": 8000}],
        "attachments": [{"id": "tk-1", "name": "To khai.pdf", "component_code": "TK01",
                         "url": "https://dichvucong.example.gov.vn/files/tk-1.pdf"}],
        "form": {"ten_tre": "Nguyễn Minh Khôi"},
    }
