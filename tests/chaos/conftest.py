# The chaos suite runs on the integration suite's machinery (real Prosody/ejabberd from the test bed,
# s2proxy instances, slixmpp clients): its fixtures and hooks are loaded from there.
import importlib.util
import sys
from pathlib import Path

_INTEGRATION = Path(__file__).resolve().parent.parent / "integration"
sys.path.insert(0, str(_INTEGRATION))
_spec = importlib.util.spec_from_file_location("s2_integration_conftest", _INTEGRATION / "conftest.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
globals().update({k: v for k, v in vars(_mod).items() if not k.startswith("__")})
