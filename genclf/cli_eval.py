"""CLI verbs for experiments (eval, sweep-t, sweep-blocks, report); filled by genclf.experiments."""


def add_commands(sub) -> None:
    return None
