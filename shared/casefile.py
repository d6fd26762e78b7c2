"""The CaseFile: what a host office may send, every field in exactly one data category.

Minimisation works on whole sections: a section is its category, so dropping a category drops
every field of it before encryption, and a withheld field never leaves the process.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.vocabulary import DataCategory

CASEFILE_VERSION = "1"
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(min_length=1, max_length=4000)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", examples=["NG"])]
LanguageCode = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$", examples=["ha"])]


class Section(BaseModel):
    """A part of the case file holding the data of one category; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    category: ClassVar[DataCategory]


class Sex(StrEnum):
    """Sex as recorded on the case, with an option not to say."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNDISCLOSED = "undisclosed"


class IdentityBasic(Section):
    """Who the returnee is."""

    category = DataCategory.IDENTITY_BASIC
    given_name: ShortText
    family_name: ShortText | None = None
    date_of_birth: date | None = None
    sex: Sex | None = None
    nationality: CountryCode | None = None
    preferred_language: LanguageCode | None = None


class IdentityDocument(Section):
    """One identity or travel document."""

    category = DataCategory.IDENTITY_DOCUMENTS
    document_type: Literal[
        "passport", "national_id", "laissez_passer", "birth_certificate", "other"
    ]
    number: ShortText
    issuing_country: CountryCode | None = None


class IdentityDocuments(Section):
    """Documents the returnee holds."""

    category = DataCategory.IDENTITY_DOCUMENTS
    documents: list[IdentityDocument] = Field(max_length=20)


class Contact(Section):
    """How to reach the returnee after return."""

    category = DataCategory.CONTACT
    phone: Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{5,32}$")] | None = None
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    address_on_return: LongText | None = None
    preferred_channel: Literal["phone", "sms", "whatsapp", "email", "in_person"] | None = None


class ReturnTravel(Section):
    """When and how the returnee arrives."""

    category = DataCategory.RETURN_TRAVEL
    return_date: date | None = None
    point_of_entry: ShortText | None = None
    accompanying_persons: int | None = Field(None, ge=0, le=50)


class Dependant(Section):
    """A person who depends on the returnee."""

    category = DataCategory.HOUSEHOLD
    relation: Literal["child", "spouse", "parent", "sibling", "other"]
    age: int | None = Field(None, ge=0, le=120)


class Household(Section):
    """The returnee's household."""

    category = DataCategory.HOUSEHOLD
    household_size: int | None = Field(None, ge=1, le=100)
    dependants: list[Dependant] = Field(default_factory=list, max_length=50)


class VulnerabilityFlag(StrEnum):
    """Vulnerabilities recognised in reintegration assistance."""

    UNACCOMPANIED_MINOR = "unaccompanied_minor"
    VICTIM_OF_TRAFFICKING = "victim_of_trafficking"
    SURVIVOR_OF_VIOLENCE = "survivor_of_violence"
    SERIOUS_MEDICAL_CONDITION = "serious_medical_condition"
    DISABILITY = "disability"
    ELDERLY = "elderly"
    PREGNANT = "pregnant"
    SINGLE_PARENT = "single_parent"


class Vulnerability(Section):
    """Vulnerability flags."""

    category = DataCategory.VULNERABILITY
    flags: list[VulnerabilityFlag] = Field(max_length=20)
    notes: LongText | None = None


class HealthPhysical(Section):
    """Physical health."""

    category = DataCategory.HEALTH_PHYSICAL
    conditions: list[ShortText] = Field(default_factory=list, max_length=50)
    medication: list[ShortText] = Field(default_factory=list, max_length=50)
    disability: LongText | None = None


class HealthMental(Section):
    """Mental health and psychosocial needs."""

    category = DataCategory.HEALTH_MENTAL
    psychosocial_needs: list[ShortText] = Field(default_factory=list, max_length=50)
    risk_assessment: LongText | None = None


class Skills(Section):
    """Education, work experience, languages and certificates."""

    category = DataCategory.SKILLS
    education_level: ShortText | None = None
    work_experience: list[ShortText] = Field(default_factory=list, max_length=50)
    languages: list[LanguageCode] = Field(default_factory=list, max_length=20)
    certificates: list[ShortText] = Field(default_factory=list, max_length=50)


class NeedsAssessment(Section):
    """The reintegration needs assessment."""

    category = DataCategory.NEEDS_ASSESSMENT
    needs: list[ShortText] = Field(default_factory=list, max_length=50)
    summary: LongText | None = None


class PlanItem(Section):
    """One item of the reintegration plan."""

    category = DataCategory.PLAN
    description: LongText
    due: date | None = None


class Plan(Section):
    """The reintegration plan."""

    category = DataCategory.PLAN
    items: list[PlanItem] = Field(max_length=100)


class Protection(Section):
    """Protection concerns."""

    category = DataCategory.PROTECTION
    concerns: list[ShortText] = Field(max_length=50)
    notes: LongText | None = None


class CaseFile(BaseModel):
    """Personal data of one returnee, one optional section per data category."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "schema_version": "1",
                    "identity_basic": {
                        "given_name": "Amina",
                        "family_name": "Bello",
                        "date_of_birth": "1994-03-12",
                        "preferred_language": "ha",
                    },
                    "contact": {"phone": "+234 803 555 0101", "preferred_channel": "whatsapp"},
                    "health_physical": {
                        "conditions": ["type 2 diabetes"],
                        "medication": ["metformin"],
                    },
                }
            ],
        },
    )

    schema_version: Literal["1"] = "1"
    identity_basic: IdentityBasic | None = None
    identity_documents: IdentityDocuments | None = None
    contact: Contact | None = None
    return_travel: ReturnTravel | None = None
    household: Household | None = None
    vulnerability: Vulnerability | None = None
    health_physical: HealthPhysical | None = None
    health_mental: HealthMental | None = None
    skills: Skills | None = None
    needs_assessment: NeedsAssessment | None = None
    plan: Plan | None = None
    protection: Protection | None = None

    def present_categories(self) -> set[DataCategory]:
        """Return the categories this case file holds data for."""
        return {
            category for category, name in SECTION_OF.items() if getattr(self, name) is not None
        }

    def minimised(self, keep: set[DataCategory]) -> CaseFile:
        """Return a copy holding only the sections of `keep`."""
        dropped = {name: None for category, name in SECTION_OF.items() if category not in keep}
        return self.model_copy(update=dropped)


def _section_names() -> dict[DataCategory, str]:
    mapping: dict[DataCategory, str] = {}
    for name, field in CaseFile.model_fields.items():
        section = _section_type(field.annotation)
        if section is not None:
            mapping[section.category] = name
    return mapping


def _section_type(annotation: Any) -> type[Section] | None:
    for candidate in getattr(annotation, "__args__", (annotation,)):
        if isinstance(candidate, type) and issubclass(candidate, Section):
            return candidate
    return None


SECTION_OF: dict[DataCategory, str] = _section_names()


def casefile_json_schema() -> dict[str, Any]:
    """Return the CaseFile JSON Schema, each section tagged with its `x-data-category`."""
    schema = CaseFile.model_json_schema()
    for category, name in SECTION_OF.items():
        schema["properties"][name]["x-data-category"] = str(category)
    schema["x-version"] = CASEFILE_VERSION
    return schema
