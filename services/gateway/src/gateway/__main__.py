from gateway.main import app, settings
from servicekit.runtime import serve

serve(app, settings)
