"""Named dependencies of the consent routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.consent.clients import DirectoryClient
from services.consent.group_commit import GroupCommit
from services.consent.settings import ConsentSettings
from services.consent.signing import TreeHeadSigner
from shared.auth import Principal, require_roles
from shared.vocabulary import Role


def _settings(request: Request) -> ConsentSettings:
    settings: ConsentSettings = request.app.state.settings
    return settings


def _directory(request: Request) -> DirectoryClient:
    directory: DirectoryClient = request.app.state.directory
    return directory


def _ledger_writer(request: Request) -> GroupCommit:
    writer: GroupCommit = request.app.state.ledger_writer
    return writer


def _signer(request: Request) -> TreeHeadSigner:
    signer: TreeHeadSigner = request.app.state.signer
    return signer


SettingsDep = Annotated[ConsentSettings, Depends(_settings)]
DirectoryDep = Annotated[DirectoryClient, Depends(_directory)]
SignerDep = Annotated[TreeHeadSigner, Depends(_signer)]
# Writes that append to the ledger: run in the next group commit, not in a request session.
LedgerWriterDep = Annotated[GroupCommit, Depends(_ledger_writer)]

HostOffice = Annotated[Principal, Depends(require_roles(Role.HOST_OFFICE))]
# Whoever sends referrals records the returnee's consent for them: host offices, and partners in
# the country of origin for local, national and onward referrals.
SENDER_ROLES = (Role.HOST_OFFICE, Role.PROVIDER, Role.COORDINATOR)
ConsentRecorder = Annotated[Principal, Depends(require_roles(*SENDER_ROLES))]
ConsentReader = Annotated[Principal, Depends(require_roles(*SENDER_ROLES, Role.AUDITOR))]
ReceiptReader = Annotated[
    Principal, Depends(require_roles(*SENDER_ROLES, Role.AUDITOR, Role.ADMIN))
]
DecisionCaller = Annotated[
    Principal, Depends(require_roles(Role.INTERNAL_CALLER, Role.HOST_OFFICE))
]
InternalCaller = Annotated[Principal, Depends(require_roles(Role.INTERNAL_CALLER))]
Clinician = Annotated[Principal, Depends(require_roles(Role.MENTAL_HEALTH_PROFESSIONAL))]
OverrideReader = Annotated[
    Principal,
    Depends(require_roles(Role.HOST_OFFICE, Role.AUDITOR, Role.MENTAL_HEALTH_PROFESSIONAL)),
]
OverrideEnder = Annotated[
    Principal, Depends(require_roles(Role.HOST_OFFICE, Role.MENTAL_HEALTH_PROFESSIONAL))
]
Auditor = Annotated[Principal, Depends(require_roles(Role.AUDITOR))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
AuditorOrInternalCaller = Annotated[
    Principal, Depends(require_roles(Role.AUDITOR, Role.INTERNAL_CALLER))
]
LedgerReader = Annotated[
    Principal,
    Depends(
        require_roles(
            Role.AUDITOR,
            Role.INTERNAL_CALLER,
            Role.HOST_OFFICE,
            Role.PROVIDER,
            Role.COORDINATOR,
            Role.MENTAL_HEALTH_PROFESSIONAL,
            Role.ADMIN,
        )
    ),
]
