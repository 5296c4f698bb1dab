import sys
from pathlib import Path

# The plugin is a single module beside this file; make it importable for its tests.
sys.path.insert(0, str(Path(__file__).parent))
