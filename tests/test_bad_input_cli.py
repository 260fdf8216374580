"""The command line attacked: every user mistake exits 2 with exactly one line on stderr
(``symflops: error: <what>: <message> (<values>); fix: <fix>``), no traceback, nothing on
stdout and no file written; the cases that used to mislead (a factory that exits or
prints, ``--plot x``, a missing torch) now do the right thing. Issue 13, command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

# left out of the fast lane: every CLI mistake in a subprocess (43 s here)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

MODELS = """
    import sys
    import warnings

    import symflops as sf


    class Escape(BaseException):
        pass


    def linear():
        return sf.nn.Linear(8, 4)

    def exits():
        sys.exit(0)

    def exits_with_code():
        sys.exit(3)

    def raises_generator_exit():
        raise GeneratorExit

    def raises_base_exception():
        raise Escape("out of here")

    def interrupts():
        raise KeyboardInterrupt

    def returns_int():
        return 42

    def returns_escape():
        return Escape()

    def returns_none():
        return None

    def needs_args(depth, width):
        return linear()

    def needs_keyword(*, width):
        return linear()

    def prints():
        print("hello from the factory")
        return linear()

    def warns():
        warnings.warn("this model is experimental")
        return linear()

    def multiline_error():
        raise RuntimeError("line one\\nline two")

    def imports_a_missing_submodule():
        import symflops.no_such_submodule  # noqa: F401
        return linear()

    def imports_lazily():
        import no_such_module_for_symflops_tests  # noqa: F401
        return linear()
"""

TORCH_MODELS = """
    import sys

    import torch
    from torch import nn


    class Exits(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 4)

        def forward(self, x):
            sys.exit(5)


    class Prints(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 4)

        def forward(self, x):
            print("forward sees", tuple(x.shape))
            return self.lin(x)


    class Fixes(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 4)

        def forward(self, x):
            torch._assert(x.shape[-1] == 8, "8 features")
            return self.lin(x)


    class Endless(nn.Module):
        # keeps adding for far longer than a one-second budget (millions of ops)

        def forward(self, x):
            for _ in range(10**7):
                x = x + 1
            return x


    class Spins(nn.Module):
        # loops on Python ints: no torch op, so the trace's own budget check never runs

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(8, 4)

        def forward(self, x):
            n = 0
            while True:
                n += 1


    def spins():
        return Spins()

    def make_spins(width):
        while True:
            pass

    def linear():
        return nn.Linear(8, 4)

    def endless():
        return Endless()

    def fixes():
        return Fixes()

    def exits():
        return Exits()

    def prints():
        return Prints()
"""

FILES = {
    "models.py": MODELS,
    "exits_on_import.py": "import sys\nsys.exit(0)\n\ndef make():\n    pass\n",
    "imports_missing.py": "import no_such_module_for_symflops_tests\n\ndef make():\n    pass\n",
    "imports_torch.py": "import torch\n\ndef make():\n    return torch.nn.Linear(8, 4)\n",
    "torch_lazily.py": "def make():\n    import torch\n    return torch.nn.Linear(8, 4)\n",
    "torch_models.py": TORCH_MODELS,
    "notes.txt": "not python\n",
    "existing.md": "keep me\n",
}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of factory files (and a folder named like a .py file)."""
    folder = tmp_path_factory.mktemp("cli_attack")
    for name, text in FILES.items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    (folder / "folder.py").mkdir()
    return folder


def run(args: list[str], work: Path) -> subprocess.CompletedProcess[str]:
    args = [a.replace("{w}", str(work)) for a in args]
    return subprocess.run([sys.executable, "-m", "symflops", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@dataclass(frozen=True)
class Case:
    id: str
    args: list[str]
    says: tuple[str, ...]   # each must appear in the one error line
    slow: bool = False      # traces: progress (after 1.5 s) and the tracer's warnings first


M = "{w}/models.py"
L = ["--input", "B 8"]
SCALE = ["scale", "Linear", "--var", "M", "--at", "I=2,O=3"]

CASES = [
    # -- factories that escape, return the wrong thing or need arguments
    Case("factory-calls-sys-exit-0", ["trace", f"{M}:exits", *L],
         ("calling", "models.py:exits called sys.exit(0)", "fix: return the model")),
    Case("factory-calls-sys-exit-3", ["trace", f"{M}:exits_with_code", *L],
         ("sys.exit(3)",)),
    Case("factory-raises-GeneratorExit", ["trace", f"{M}:raises_generator_exit", *L],
         ("raised GeneratorExit", "fix:")),
    Case("factory-raises-BaseException-subclass", ["trace", f"{M}:raises_base_exception", *L],
         ("raised Escape: out of here",)),
    Case("file-calls-sys-exit-on-import", ["trace", "{w}/exits_on_import.py:make", *L],
         ("importing", "exits_on_import.py called sys.exit(0)", "__main__")),
    Case("factory-returns-int", ["trace", f"{M}:returns_int", *L],
         ("models.py:returns_int returned int, not a model symflops can cost",
          "torch.nn.Module")),
    Case("factory-returns-a-class-instance", ["trace", f"{M}:returns_escape", *L],
         ("models.py:returns_escape returned Escape, not a model",)),
    Case("factory-returns-None", ["trace", f"{M}:returns_none", *L], ("returned NoneType",)),
    Case("factory-needs-positional-args", ["trace", f"{M}:needs_args", *L],
         ("needs arguments: depth, width", "give them defaults")),
    Case("factory-needs-keyword-arg", ["trace", f"{M}:needs_keyword", *L],
         ("needs arguments: width",)),
    Case("factory-raises-multiline-error", ["trace", f"{M}:multiline_error", *L],
         ("RuntimeError: line one line two", "fix: fix the factory")),
    Case("file-imports-missing-module", ["trace", "{w}/imports_missing.py:make", *L],
         ("needs the module 'no_such_module_for_symflops_tests', which is not installed",
          "pip install no_such_module_for_symflops_tests")),
    Case("factory-imports-missing-module", ["trace", f"{M}:imports_lazily", *L],
         ("calling", "needs the module 'no_such_module_for_symflops_tests'")),
    Case("model-forward-calls-sys-exit", ["trace", "{w}/torch_models.py:exits", *L],
         ("tracing", "torch_models.py:exits called sys.exit(5)",
          "fix: take the sys.exit out of the model's forward"), slow=True),
    Case("factory-imports-missing-submodule", ["trace", f"{M}:imports_a_missing_submodule", *L],
         ("imports 'symflops.no_such_submodule', which the installed symflops does not have",
          "fix: check the module name, or the version of symflops")),
    # a forward that asserts 8 features, traced on "B W", fixes W = 8: a value or a sweep
    # of W would be ignored
    Case("at-a-dim-the-model-fixes", ["trace", "{w}/torch_models.py:fixes", "--input", "B W",
                                      "--hint", "W=8", "--at", "B=2,W=16"],
         ("--at: the traced model fixes W = 8 (at ", "torch_models.py:", "_assert(x.shape[-1] "
          "== 8, \"8 features\")) (its forward", "symbols=B", "fix: leave W out"), slow=True),
    Case("var-a-dim-the-model-fixes", ["scale", "{w}/torch_models.py:fixes", "--input", "B W",
                                       "--hint", "W=8", "--var", "W", "--range", "8:32:8"],
         ("--var: the traced model fixes W",), slow=True),
    # torch logs each failed symbolic attempt with a traceback (38 lines): not shown
    Case("model-torch-cannot-run", ["trace", "{w}/torch_models.py:linear", "--input", "B W"],
         ("torch could not run the model on symbolic shapes",), slow=True),
    Case("module-target-missing", ["trace", "no_such_pkg_for_symflops.mod:make", *L],
         ("cannot import module 'no_such_pkg_for_symflops.mod'", "FILE.py")),
    # -- the target's syntax
    Case("target-empty", ["trace", "", *L], ("cannot read target ''", "FILE.py:FACTORY")),
    Case("target-only-factory", ["trace", ":linear", *L],
         ("no file or module before the factory in ':linear'",)),
    Case("target-only-file", ["trace", f"{M}:", *L], ("no factory named in", "models.py:")),
    Case("target-no-such-factory", ["trace", f"{M}:no_such", *L],
         ("has no factory 'no_such'", "linear")),
    Case("target-unicode-factory", ["trace", f"{M}:modèle", *L], ("'modèle' is not a name",)),
    Case("target-is-a-folder", ["trace", "{w}:linear", *L], ("is a folder, not a .py file",)),
    Case("target-folder-named-py", ["trace", "{w}/folder.py:linear", *L],
         ("folder.py is a folder, not a .py file",)),
    Case("target-not-a-py-file", ["trace", "{w}/notes.txt:make", *L],
         ("notes.txt is not a .py file",)),
    Case("target-missing-file", ["trace", "{w}/missing.py:make", *L],
         ("no such file", "missing.py")),
    Case("target-very-long", ["trace", "a/" * 3000 + "x.py:f", *L],
         ("target longer than 1000 characters", "length=6006")),
    Case("target-is-a-layer-name", ["trace", "Linear", *L],
         ("cannot read target 'Linear'", "symflops formula Linear")),
    # -- output paths: checked before any work, named with the fix
    Case("output-missing-folder", ["trace", f"{M}:linear", *L, "--output",
                                   "/nonexistent/dir/x.md"],
         ("--output: the folder /nonexistent/dir does not exist", "mkdir -p")),
    Case("output-is-a-folder", ["trace", f"{M}:linear", *L, "--output", "{w}"],
         ("is a folder, not a file", "name a file inside it")),
    Case("output-parent-is-a-file", ["trace", f"{M}:linear", *L, "--output",
                                     "{w}/notes.txt/x.md"],
         ("notes.txt is a file, not a folder",)),
    # /sys refuses new files even to root
    Case("output-no-permission", ["trace", f"{M}:linear", *L, "--output", "/sys/symflops.md"],
         ("--output: cannot write /sys/symflops.md", "fix: choose a path")),
    Case("output-over-the-model-source", ["trace", f"{M}:linear", *L, "--output", M],
         ("models.py is Python source; it is not overwritten",)),
    Case("output-and-plot-same-file", [*SCALE, "--range", "1:4", "--plot", "{w}/p.png",
                                       "--output", "{w}/p.png"],
         ("--plot and --output name the same file",)),
    Case("output-empty", ["formula", "Linear", "--output", ""], ("--output: the path is empty",)),
    Case("doc-output-is-a-folder", ["doc", "--output", "{w}"], ("is a folder, not a file",)),
    Case("doc-check-a-folder", ["doc", "--check", "--output", "{w}"], ("--check: cannot read",)),
    Case("plot-unknown-suffix", [*SCALE, "--range", "1:4", "--plot", "{w}/plot.foo"],
         ("--plot: cannot write a .foo plot", ".png, .svg or .pdf")),
    Case("plot-missing-folder", [*SCALE, "--range", "1:4", "--plot", "/nonexistent/p.png"],
         ("--plot: the folder /nonexistent does not exist",)),
    # -- hints
    Case("hint-unknown-name", ["trace", "{w}/imports_torch.py:make", *L, "--hint", "Q=3"],
         ("--hint: Q is not a dim of the input", "input=B 8", "hint one of: B")),
    Case("hint-given-twice", ["trace", "{w}/imports_torch.py:make", *L, "--hint", "B=2",
                              "--hint", "B=3"],
         ("--hint: B is given twice",)),
    Case("hint-zero", ["trace", "{w}/imports_torch.py:make", *L, "--hint", "B=0"],
         ("hints must be positive integers", "B=0")),
    Case("hint-without-input", ["trace", "{w}/imports_torch.py:make", "--hint", "B=3"],
         ("--hint: B is not a dim of the input", "input=none", "pass --input")),
    Case("hint-for-a-layer", [*SCALE, "--range", "1:4", "--hint", "M=3"],
         ("--hint applies to traced torch models, and Linear is an sf.nn layer",
          "leave --hint out")),
    Case("hint-for-an-sf-nn-network", ["trace", f"{M}:linear", *L, "--hint", "B=3"],
         ("--hint applies to traced torch models", "models.py:linear returns an sf.nn")),
    Case("zero-without-train", ["trace", f"{M}:linear", *L, "--zero", "1"],
         ("--zero sizes the training memory", "add --train")),
    Case("train-for-a-layer", [*SCALE, "--range", "1:4", "--train"],
         ("--train applies to traced torch models", "Linear is an sf.nn layer")),
    # -- --at
    Case("at-unknown-name", ["trace", f"{M}:linear", *L, "--at", "Q=1"],
         ("--at: unknown symbol 'Q'", "B")),
    Case("at-zero", ["formula", "Linear", "--at", "M=0"],
         ("--at: sizes must be positive integers", "M=0", "value >= 1")),
    Case("at-negative", ["formula", "Linear", "--at", "M=-3"], ("M=-3",)),
    Case("at-fraction", ["formula", "Linear", "--at", "M=1/2"], ("M=1/2",)),
    Case("at-maybe-negative", ["formula", "Linear", "--at", "M=I-5"],
         ("--at: M=I - 5 can be zero or negative",)),
    Case("at-negative-padding", ["formula", "Conv2d", "--at", "p=-1"],
         ("--at: p must be an integer >= 0", "p=-1", "value >= 0")),
    Case("at-empty", ["formula", "Linear", "--at", ""], ("--at: no values given",)),
    Case("at-huge-exponent", ["formula", "Linear", "--at", "I=2**M"], ("exponents",)),
    # -- scale
    Case("range-from-zero", [*SCALE, "--range", "0:4:2"],
         ("--range: sizes must be positive", "M=0", "start the range at 1")),
    Case("range-traced-model-from-zero", ["scale", "examples/resnet.py:tiny", "--input",
                                          "B 3 H W", "--var", "H,W", "--range", "0:64:16"],
         ("--range: sizes must be positive", "H=0"), slow=True),
    Case("range-list-with-zero", [*SCALE, "--range", "4,0,2"],
         ("--range: sizes must be positive", "M=0")),
    Case("range-beyond-int64", [*SCALE, "--range", "2**62,2**63"],
         ("--range: range values are sizes and must fit int64", "value=9223372036854775808")),
    Case("range-geometric-to-2-64", [*SCALE, "--range", "1:2**64:*2"],
         ("--range: range values are sizes and must fit int64",)),
    Case("range-result-beyond-int64", [*SCALE, "--range", "2**61,2**62"],
         ("exceeds int64", "fix: sweep smaller sizes")),
    Case("range-reversed", [*SCALE, "--range", "4:1"], ("range stop is below its start",)),
    Case("range-empty", [*SCALE, "--range", ""], ("empty expression",)),
    Case("var-also-in-at", ["scale", "Linear", "--var", "M", "--at", "I=2,O=3,M=3",
                            "--range", "1:4"],
         ("--var M is also given a value in --at",)),
    Case("var-empty", ["scale", "Linear", "--var", "", "--range", "1:4"], ("is not a name",)),
    Case("crossover-empty", [*SCALE, "--range", "1:4", "--crossover", ","],
         ("--crossover needs two module paths",)),
    Case("crossover-three", [*SCALE, "--range", "1:4", "--crossover", "a,b,c"],
         ("--crossover needs two module paths", "crossover=a,b,c")),
    # -- arguments argparse refuses, in the same one-line form
    Case("format-unknown", ["trace", f"{M}:linear", *L, "--format", "nope"],
         ("argument --format: invalid choice: 'nope'", "fix: see symflops trace --help")),
    Case("depth-negative", ["formula", "Linear", "--depth", "-1"], ("--depth must be >= 1",)),
    Case("depth-not-a-number", ["formula", "Linear", "--depth", "x"],
         ("argument --depth: invalid int value",)),
    Case("no-command", [], ("required: COMMAND",)),
    Case("scale-without-range", ["scale", "Linear", "--var", "M"], ("required: --range",)),
    Case("unknown-flag", ["formula", "Linear", "--nope"], ("unrecognized arguments: --nope",)),
    Case("convention-empty", ["formula", "Linear", "--convention", ""],
         ("unknown convention",)),
    Case("layer-unknown", ["formula", "Conv9d"], ("unknown layer 'Conv9d'",)),
    # -- input specs
    Case("input-negative-size", ["trace", f"{M}:linear", "--input", "B -8"],
         ("--input: sizes must be positive integers", "size=-8")),
    Case("input-zero-size", ["trace", f"{M}:linear", "--input", "B 0"],
         ("--input: sizes must be positive integers", "size=0")),
    Case("input-empty", ["trace", f"{M}:linear", "--input", ""], ("empty input spec",)),
    Case("input-unicode-name", ["trace", f"{M}:linear", "--input", "Bé 8"],
         ("'Bé' is not a name",)),
    Case("input-50000-dims", ["trace", f"{M}:linear", "--input", "B" + " 8" * 50000],
         ("--input: input longer than 2000 characters", "length=100001")),
    Case("input-missing", ["trace", f"{M}:linear"], ("needs an input",)),
    # -- the trace's time budget
    Case("time-budget-zero", ["trace", f"{M}:linear", *L, "--time-budget", "0"],
         ("--time-budget must be 1 second or more",)),
    Case("time-budget-text", ["trace", f"{M}:linear", *L, "--time-budget", "soon"],
         ("--time-budget must be an integer",)),
    Case("time-budget-spent", ["trace", "{w}/torch_models.py:endless", *L,
                               "--time-budget", "1"],
         ("ran out of its time budget (1 s)", "--fallback fit"), slow=True),
    Case("time-budget-forward-loops-without-torch", ["trace", "{w}/torch_models.py:spins", *L,
                                                     "--time-budget", "1"],
         ("ran out of its time budget (1 s)", "--time-budget"), slow=True),
    Case("time-budget-make-never-returns", ["trace", "{w}/torch_models.py:make_spins", *L,
                                            "--vary", "width=W", "--time-budget", "1"],
         ("ran out of its time budget (1 s)", "--time-budget"), slow=True),
]


# Each case runs in a process of its own, forked from one that imported symflops.cli
# (what `python -m symflops` runs, without paying the import 60 times): real exit codes,
# real file descriptors 1 and 2, no state shared between cases.
DRIVER = """
import json, os, sys
from symflops.cli import main

results = {}
for case_id, args, out_path, err_path in json.loads(sys.stdin.read()):
    pid = os.fork()
    if pid == 0:
        for fd, path in ((1, out_path), (2, err_path)):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
        try:
            code = main(args)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    results[case_id] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps(results))
"""


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def outcomes(work: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    logs = tmp_path_factory.mktemp("cli_attack_logs")
    before = listing(work)
    plan = [(c.id, [a.replace("{w}", str(work)) for a in c.args],
             str(logs / f"{i}.out"), str(logs / f"{i}.err")) for i, c in enumerate(CASES)]
    p = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(plan), cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    codes = json.loads(p.stdout)
    assert listing(work) == before  # no output, plot or temporary file left behind
    for name, text in FILES.items():  # and no file overwritten
        assert (work / name).read_text(encoding="utf-8") == textwrap.dedent(text)
    return {case_id: Outcome(codes[case_id], Path(out).read_text(), Path(err).read_text())
            for case_id, _, out, err in plan}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_mistake_is_one_line_and_exit_2(case: Case, outcomes: dict[str, Outcome],
                                          work: Path) -> None:
    p = outcomes[case.id]
    assert p.code == 2, (p.code, p.stdout[-500:], p.stderr[-2000:])
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    if case.slow:
        lines = [ln for ln in lines if not ln.startswith(("symflops: building and costing ",
                                                           "symflops: warning: "))]
    assert len(lines) == 1, p.stderr
    (line,) = lines
    assert line.startswith("symflops: error: ") and "fix: " in line, line
    for text in case.says:
        assert text.replace("{w}", str(work)) in line, (text, line)


@pytest.mark.parametrize("case", [c for c in CASES if c.id in (
    "factory-calls-sys-exit-0", "file-imports-missing-module", "format-unknown",
    "output-is-a-folder")], ids=lambda c: c.id)
def test_the_same_through_python_m_symflops(case: Case, outcomes: dict[str, Outcome],
                                            work: Path) -> None:
    p = run(case.args, work)
    assert (p.returncode, p.stdout, p.stderr) == (2, "", outcomes[case.id].stderr)


def test_enough_cases() -> None:
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)


# --------------------------------------------------------------------------- right output
def test_failed_command_keeps_an_existing_output_file(work: Path) -> None:
    p = run(["trace", f"{M}:linear", *L, "--at", "Q=1", "--output", "{w}/existing.md"], work)
    assert p.returncode == 2
    assert (work / "existing.md").read_text(encoding="utf-8") == "keep me\n"


def test_output_replaces_a_file_whole(work: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out.md"
    dest.write_text("old and much longer text " * 100, encoding="utf-8")
    dest.chmod(0o640)
    p = run(["trace", f"{M}:linear", *L, "--output", str(dest)], work)
    assert p.returncode == 0 and p.stderr == f"symflops: wrote {dest}\n"
    printed = run(["trace", f"{M}:linear", *L], work).stdout
    assert dest.read_text(encoding="utf-8") == printed
    assert dest.stat().st_mode & 0o777 == 0o640      # the file keeps its mode
    assert listing(tmp_path) == ["out.md"]           # no temporary file left


def test_factory_prints_go_to_stderr(work: Path) -> None:
    # stdout carries only the result: JSON output stays parseable
    p = run(["trace", f"{M}:prints", *L, "--format", "json"], work)
    assert p.returncode == 0 and "hello from the factory" in p.stderr
    plain = run(["trace", f"{M}:linear", *L, "--format", "json"], work)
    assert json.loads(p.stdout) == json.loads(plain.stdout)


def test_model_prints_go_to_stderr(work: Path) -> None:
    # a torch model printing in forward: the JSON on stdout still parses, and matches
    # the same model without the print (a Linear(8, 4) on B x 8: 32*B MACs)
    p = run(["trace", "{w}/torch_models.py:prints", *L, "--format", "json", "--at", "B=3",
             "--convention", "macs"], work)
    assert p.returncode == 0, p.stderr
    assert "forward sees" in p.stderr
    tree = json.loads(p.stdout)["tree"]
    assert tree["macs"]["expr"]["str"] == "32*B"       # 8 * 4 MACs per row
    assert tree["macs"]["value"]["int"] == 96          # 32 * 3 at B = 3


def test_warnings_are_one_line(work: Path) -> None:
    p = run(["trace", f"{M}:warns", *L], work)
    assert p.returncode == 0
    assert p.stderr == "symflops: warning: this model is experimental\n"


def test_interrupt_is_one_line_and_exit_130(work: Path) -> None:
    # a KeyboardInterrupt is Ctrl-C, whoever raised it: the shell's status for SIGINT
    p = run(["trace", f"{M}:interrupts", *L], work)
    assert (p.returncode, p.stdout, p.stderr) == (130, "", "symflops: interrupted\n")


def test_at_allows_what_the_symbol_allows(work: Path) -> None:
    # padding p may be 0 (a non-negative symbol); sizes may not: only sizes are refused
    at = "B=1,C_in=3,C_out=8,K=3,H=32,W=32,s=1,p=0,groups=1"
    p = run(["formula", "Conv2d", "--at", at], work)
    assert p.returncode == 0, p.stderr
    from symflops.reference import EXAMPLES

    ex = EXAMPLES["Conv2d"]
    cost = ex.build().cost(ex.input_shape).subs(B=1, C_in=3, C_out=8, K=3, H=32, W=32, s=1,
                                                p=0, groups=1)
    # 8 * 30 * 30 outputs, each 27 multiplies + 26 adds + 1 bias = 54 FLOPs
    assert cost.flops == 8 * 30 * 30 * 54
    assert f"FLOPs (exact)  {int(cost.flops):,}" in p.stdout


def test_range_allows_what_the_symbol_allows(work: Path) -> None:
    # padding sweeps from 0; the table is Cost.subs at each point
    p = run(["scale", "Conv2d", "--var", "p", "--range", "0:2", "--at",
             "B=1,C_in=1,C_out=1,K=3,H=8,W=8,s=1,groups=1"], work)
    assert p.returncode == 0, p.stderr
    from symflops.reference import EXAMPLES

    ex = EXAMPLES["Conv2d"]
    cost = ex.build().cost(ex.input_shape).subs(B=1, C_in=1, C_out=1, K=3, H=8, W=8, s=1,
                                                groups=1)
    # (8 - 3 + 2p + 1)^2 outputs, 9 + 8 + 1 = 18 FLOPs each: 648, 1152, 1800
    expected = [cost.subs(p=v).flops for v in (0, 1, 2)]
    assert expected == [648, 1152, 1800]
    for v, flops in zip((0, 1, 2), expected, strict=True):
        assert re.search(rf"^\s*{v}\s+{int(flops):,}$", p.stdout, re.M), p.stdout


def test_closed_pipe_is_quiet() -> None:
    # `symflops doc | head -1`: the reader leaves early; no error, no traceback
    p = subprocess.Popen([sys.executable, "-m", "symflops", "doc"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read()
    assert (p.wait(timeout=120), err) == (141, b"")


@pytest.mark.parametrize("name, suffix, magic", [
    ("plot", ".png", b"\x89PNG\r\n\x1a\n"),     # no suffix: .png is added, and said
    ("plot.png", ".png", b"\x89PNG\r\n\x1a\n"),
    ("plot.svg", ".svg", b"<?xml"),
    ("plot.PDF", ".PDF", b"%PDF"),
], ids=["no-suffix", "png", "svg", "pdf-upper-case"])
def test_plot_writes_the_path_it_names(name: str, suffix: str, magic: bytes,
                                       tmp_path: Path, work: Path) -> None:
    p = run([*SCALE, "--range", "1:8:*2", "--plot", str(tmp_path / name)], work)
    assert p.returncode == 0, p.stderr
    written = tmp_path / (name if Path(name).suffix else name + ".png")
    assert written.suffix == suffix
    assert p.stderr == f"symflops: wrote {written}\n"
    assert listing(tmp_path) == [written.name]
    assert written.read_bytes().startswith(magic)


def _without_torch(args: list[str], work: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a Python where ``import torch`` fails as if it were not installed."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "from symflops.cli import main\n"
            f"sys.exit(main({[a.replace('{w}', str(work)) for a in args]!r}))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("target, when", [
    ("{w}/imports_torch.py:make", "importing"),
    ("{w}/torch_lazily.py:make", "calling"),
], ids=["imported-at-top", "imported-in-factory"])
def test_missing_torch_says_install_torch(target: str, when: str, work: Path) -> None:
    p = _without_torch(["trace", target, "--input", "B 8"], work)
    assert p.returncode == 2 and p.stdout == ""
    (line,) = p.stderr.splitlines()
    assert line.startswith(f"symflops: error: {when} ")
    assert "needs the module 'torch', which is not installed" in line
    assert line.endswith("fix: install torch: pip install torch==2.13.0")


def test_sf_nn_models_work_without_torch(work: Path) -> None:
    p = _without_torch(["trace", f"{M}:linear", "--input", "B 8", "--at", "B=2"], work)
    assert p.returncode == 0, p.stderr
    assert "FLOPs (exact)  128" in p.stdout   # 2 * (8 mul + 7 add + 1 bias) * 4 outputs


def test_cli_import_stays_light() -> None:
    # the command line starts without torch or matplotlib; they load when a model needs them
    code = ("import sys, symflops.cli, symflops.targets, symflops.files\n"
            "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr
