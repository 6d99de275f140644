"""Mesa agents: identity and structure. Their hot state lives in the model's arrays."""

from agents.daycare import Daycare
from agents.family import Family
from agents.school import School

__all__ = ["Daycare", "Family", "School"]
