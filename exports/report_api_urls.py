"""API of the reports (KB correctness, model leaderboard): JSON and CSV."""

app_name = "reports-api"

urlpatterns: list = []
