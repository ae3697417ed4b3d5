"""The avatune service: FastAPI app, database models and the dashboard. Never imports torch."""
