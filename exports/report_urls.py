"""Web pages of the reports (KB correctness, model leaderboard)."""

app_name = "reports"

urlpatterns: list = []
