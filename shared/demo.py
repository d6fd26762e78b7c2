"""Fixed identities of the demo organisations, so every service's demo seed agrees on them.

Demo only: `make run` seeds these; production directories are filled by admins or HSDS import.
"""

from __future__ import annotations

import uuid
from pathlib import Path

DEMO_DIR = Path("var/demo")
DEMO_KEYS_DIR = DEMO_DIR / "keys"
DEMO_CLIENTS_FILE = DEMO_DIR / "clients.json"
SERVICE_CLIENTS_FILE = DEMO_DIR / "service-clients.json"


def _demo_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"0192f000-0000-7000-8000-{n:012d}")


# The organisation each demo API client belongs to (one per role).
HOST_OFFICE_ORG = _demo_id(1)  # a return office in Germany
HEALTH_PROVIDER_ORG = _demo_id(2)  # a clinic in Nigeria
COORDINATOR_ORG = _demo_id(3)  # a reintegration case-management committee in Nigeria
MENTAL_HEALTH_ORG = _demo_id(4)  # a psychosocial NGO in Nigeria, employs the demo clinician
AUDITOR_ORG = _demo_id(5)  # a data-protection office
ADMIN_ORG = _demo_id(6)  # the directory steward
SECOND_HOST_OFFICE_ORG = _demo_id(7)  # another return office (for "foreign organisation" checks)
PLATFORM_ORG = _demo_id(8)  # refex itself: owner of the services' own API clients

DEMO_ROLE_ORGS: dict[str, uuid.UUID] = {
    "host_office": HOST_OFFICE_ORG,
    "provider": HEALTH_PROVIDER_ORG,
    "coordinator": COORDINATOR_ORG,
    "mental_health_professional": MENTAL_HEALTH_ORG,
    "auditor": AUDITOR_ORG,
    "admin": ADMIN_ORG,
}

# Demo people: one user per role, signing in at the gateway with DEMO_USER_PASSWORD (demo only;
# the seed resets them to these values on every run).
DEMO_USER_PASSWORD = "refex-demo-password"  # noqa: S105 (printed by `make run`, demo only)
DEMO_USERS: dict[str, tuple[str, uuid.UUID]] = {
    role: (f"{role.replace('_', '-')}@demo.refex.example", org)
    for role, org in DEMO_ROLE_ORGS.items()
}

# Demo services and focal points the directory seeds (the referral demo walks through these).
DEMO_HEALTH_SERVICE = _demo_id(101)  # primary care at HEALTH_PROVIDER_ORG (category health)
DEMO_MENTAL_HEALTH_SERVICE = _demo_id(102)  # at MENTAL_HEALTH_ORG (mental_health_psychosocial)
DEMO_HEALTH_FOCAL_POINT = _demo_id(201)  # referral desk of DEMO_HEALTH_SERVICE
DEMO_HEALTH_BACKUP_FOCAL_POINT = _demo_id(202)  # the clinic's duty desk, its backup

# Demo programmes: the EU one covers Nigeria and Iraq, the Sahel one Senegal.
EU_PROGRAMME = "eu-reintegration-2026"
SAHEL_PROGRAMME = "sahel-return-2026"
