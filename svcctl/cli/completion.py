"""`svcctl completion bash|zsh|fish`: the shell script that asks svcctl itself for completions."""

from __future__ import annotations

import sys

import click

PROG_NAME = "svcctl"
COMPLETE_VAR = "_SVCCTL_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


def completion_script(shell: str) -> str:
    """click's own script for `shell`; the committed completions/ files are exactly this text."""
    from click.shell_completion import get_completion_class

    from svcctl.cli.complete import register_shells
    from svcctl.cli.main import cli

    register_shells()

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - SHELLS are all built into click
        raise click.BadParameter(f"unsupported shell {shell!r}")
    text = cls(cli, {}, PROG_NAME, COMPLETE_VAR).source()
    return text if text.endswith("\n") else text + "\n"


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def command(shell: str) -> int:
    """Print a shell completion script for svcctl.

    \b
    Completes commands, flags, and (from the cluster or --snapshot given earlier on the line) Service,
    namespace, context and node names.

    \b
    Enable it:
      bash:  eval "$(svcctl completion bash)"          (in ~/.bashrc)
      zsh:   eval "$(svcctl completion zsh)"           (in ~/.zshrc, after compinit)
      fish:  svcctl completion fish > ~/.config/fish/completions/svcctl.fish
    A wheel install also places them in share/bash-completion/completions, share/zsh/site-functions and
    share/fish/vendor_completions.d. `kubectl svcctl <TAB>` works through kubectl_complete-svcctl.
    """
    sys.stdout.write(completion_script(shell))
    return 0
