from django import forms

from conversations.models import SourceFormat


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text="JSONL or CSV, optionally gzip-compressed.")
    format = forms.ChoiceField(
        choices=[("", "Detect automatically"), *SourceFormat.choices], required=False
    )
    skip_invalid = forms.BooleanField(
        required=False,
        help_text="Import the valid records and keep the invalid ones in a rejects file. "
        "Off: any invalid record means nothing is imported.",
    )
