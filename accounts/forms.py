from django import forms


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What uses it, e.g. “labelling script” or “CI export”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
