app_name = "exports-api"

urlpatterns: list = []
