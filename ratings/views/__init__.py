"""The rater web UI: rate, skip, my history and edits; the lead's project page and set-up."""

from ratings.views.judgment_import import judgment_import_detail, judgment_import_upload
from ratings.views.projects import home, item_detail, project_page, project_settings
from ratings.views.quality import quality_dashboard, quality_rater
from ratings.views.rating import edit_judgment, guidelines, my_judgments, rate, skip, submit
from ratings.views.setup import members, project_new, rubric_download, rubric_edit

__all__ = [
    "edit_judgment",
    "guidelines",
    "home",
    "item_detail",
    "judgment_import_detail",
    "judgment_import_upload",
    "members",
    "my_judgments",
    "project_new",
    "project_page",
    "project_settings",
    "quality_dashboard",
    "quality_rater",
    "rate",
    "rubric_download",
    "rubric_edit",
    "skip",
    "submit",
]
