"""Pure rules of a service case: models, commands, events, decide/evolve. No temporalio, no I/O."""
