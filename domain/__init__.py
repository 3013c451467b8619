"""Pure rules of a service case: models, commands, events, decide/evolve. No temporalio, no I/O."""

# model and sla refer to each other (CaseState pins SlaTerms; SlaTerms uses model's enums):
# loading model first, whatever submodule is asked for, lets it resolve that cycle itself.
from domain import model as _model  # noqa: F401
