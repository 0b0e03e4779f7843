from django import template

from conversations.rendering import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str):
    """Render Markdown safely (raw HTML escaped, output sanitised)."""
    return render_markdown(text)


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
