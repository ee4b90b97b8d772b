"""The operator dashboard: server-rendered pages (Jinja2) and small dependency-free scripts, shipped as package
data. The pages read only the public REST and live APIs; sign-in turns the API token into a session cookie."""
