"""Inter-rater agreement and per-rater quality statistics for collected ratings.

Pure functions on plain Python data: ratings come as lists of lists with ``None`` for a
missing rating, results are floats, tuples, lists and dicts. There is no Django or ORM
dependency; only numpy and scipy are used at run time.

The coefficients are implemented from the published formulas (Krippendorff 2011 for alpha,
Fleiss 1971 and Gwet's Handbook of Inter-Rater Reliability for kappa and AC1 with missing
ratings, Cohen 1960/1968 for two-rater kappa, Zheng et al. 2023 for MT-Bench pairwise
agreement) and vectorised with numpy: ratings are encoded once into integer codes and
counted per unit with ``np.bincount``, so cost grows linearly with the number of ratings.

The ``krippendorff`` package (GPL-3.0), scikit-learn's ``cohen_kappa_score`` and statsmodels
are used only as test oracles; they live in the ``dev`` extra and are never imported by the
service. statsmodels' ``fleiss_kappa`` also cannot be used at run time because it rejects
missing ratings. crowd-kit (about 750 MB of dependencies) and irrCAC (pins numpy<2) are
deliberately not used.

Every statistic returns ``None`` (never NaN and never a silent 0) when it is undefined for
the data: no unit with two ratings, only one category used, one rater, empty input. The
``*_result`` variants return a :class:`MetricResult` that also says why and on how many
units and ratings the value rests.
"""

from ._data import MetricResult
from .agreement import (
    cohen_kappa,
    cohen_kappa_result,
    fleiss_kappa,
    fleiss_kappa_result,
    gwet_ac1,
    gwet_ac1_result,
    krippendorff_alpha,
    krippendorff_alpha_result,
    pairwise_agreement,
    pairwise_agreement_result,
    percent_agreement,
    percent_agreement_result,
)
from .bootstrap import bootstrap_ci, krippendorff_alpha_ci
from .raters import (
    distribution_divergence,
    loo_consensus_agreement,
    loo_residuals,
    position_bias,
    straight_lining_share,
)

__all__ = [
    "MetricResult",
    "bootstrap_ci",
    "cohen_kappa",
    "cohen_kappa_result",
    "distribution_divergence",
    "fleiss_kappa",
    "fleiss_kappa_result",
    "gwet_ac1",
    "gwet_ac1_result",
    "krippendorff_alpha",
    "krippendorff_alpha_ci",
    "krippendorff_alpha_result",
    "loo_consensus_agreement",
    "loo_residuals",
    "pairwise_agreement",
    "pairwise_agreement_result",
    "percent_agreement",
    "percent_agreement_result",
    "position_bias",
    "straight_lining_share",
]
