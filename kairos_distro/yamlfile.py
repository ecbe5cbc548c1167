"""The one YAML loader of the package: release.yaml text -> plain Python data, with limits.

yaml.safe_load trusts its input too much for a file anyone can send in a pull
request: an alias bomb grows without bound, 5,000 nested brackets end in a
RecursionError, a repeated key silently wins, `2024-01-01` becomes a date and
`1.10` the float 1.1. This loader composes with limits checked on each event
(before anything grows), refuses what release.yaml never holds, and keeps the
text the user wrote. Each refusal is a ConfigError `FILE:LINE:COL: why`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from .fields import ConfigError
from .words import show

try:  # libyaml's events, as CSafeLoader reads them (5x faster); composing stays ours
    from yaml.cyaml import CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    CParser = None


MAX_BYTES = 2 * 1024 * 1024  # 20,000 cells fit; a release.yaml is a few KiB
MAX_DEPTH = 64  # release.yaml nests 4 levels
MAX_NODES = 250_000  # values in the file (about 2 s to read)
MAX_ALIASED = 10_000  # values reached through aliases, counted once per alias
NUMBER_MAX = 64  # characters of a number (base-60 `1:2:3...` costs quadratic time)
RUNAWAY_SCAN = 64 * 1024  # text re-scanned to find a quote that runs over lines

CORE = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (CORE + t for t in ("str", "int", "float", "bool", "null"))
SEQ, MAP, MERGE = CORE + "seq", CORE + "map", CORE + "merge"
ALLOWED_TAGS = {STR, INT, FLOAT, BOOL, NULL, SEQ, MAP, MERGE}
# Characters YAML refuses in a stream (yaml.reader.Reader.NON_PRINTABLE), raw surrogates too.
NOT_YAML = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
SURROGATE = re.compile("[\ud800-\udfff]")
# libyaml refuses "\\ud83d\\ude80" (JSON's spelling of one emoji, as Jinja's tojson
# writes it); PyYAML's own scanner reads it, and the composer joins the pair.
SURROGATE_ESCAPE = "invalid Unicode character escape"
UNCLOSED = ("found unexpected end of stream", "found unexpected document separator")


class Int(int):
    """An integer that remembers how it was written (`0x1F`, `1_000`)."""

    source: str


class Float(float):
    """A float that remembers how it was written: `1.10` is shown as 1.10, not 1.1."""

    source: str


def read(path: Path) -> Any:
    """The data of the YAML file `path`; ConfigError when unreadable, too big or not YAML."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"cannot read ({err.strerror or err})", file=path) from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"is larger than {MAX_BYTES // 2**20} MiB", file=path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start)
        column = err.start - raw.rfind(b"\n", 0, err.start)
        at = f":{line + 1}:{column}"
        why = f"is not UTF-8 text (byte 0x{raw[err.start]:02x})"
        raise ConfigError(why, file=path, at=at) from None
    return loads(text, path)


def loads(text: str, path: Path = Path("release.yaml")) -> Any:
    """The data of YAML `text` read from `path` (named in refusals)."""
    bad = NOT_YAML.search(text)
    if bad:
        why = f"character {show(bad.group())} is not allowed in YAML"
        raise ConfigError(why, file=path, at=_position(text, bad.start()))
    try:
        try:
            return _load(Loader, text, path)
        except yaml.MarkedYAMLError as err:
            if SURROGATE_ESCAPE not in (err.problem or ""):
                raise
            return _load(PyLoader, text, path)
    except yaml.MarkedYAMLError as err:
        raise _refusal(err, text, path) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"invalid YAML ({str(err).splitlines()[0]})", file=path) from None


def _load(loader_class: type[_Composer], text: str, path: Path) -> Any:
    loader = loader_class(text, path)  # type: ignore[call-arg]
    try:
        return loader.get_single_data()  # type: ignore[attr-defined]
    finally:
        loader.dispose()  # type: ignore[attr-defined]


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index)
    return f":{line + 1}:{index - text.rfind(chr(10), 0, index)}"


def _at(mark: yaml.Mark) -> str:
    return f":{mark.line + 1}:{mark.column + 1}"


def _refusal(err: yaml.MarkedYAMLError, text: str, path: Path) -> ConfigError:
    """One line for a parser error, at the place to fix (an unclosed quote: where it opens)."""
    mark, why = err.problem_mark or err.context_mark, err.problem or err.context or "invalid"
    opened = err.context_mark
    if opened and "quoted scalar" in (err.context or "") and why in UNCLOSED:
        return ConfigError("this quote is never closed", file=path, at=_at(opened))
    runaway = _runaway_quote(text, mark) if mark else None
    if runaway:
        why = f"this quote runs on to line {mark.line + 1}: is its closing quote missing?"
        return ConfigError(why, file=path, at=_at(runaway))
    char = _char(text, mark) if mark and "cannot start any token" in why else ""
    if char == "\t":
        why = "a tab where YAML wants spaces (indent with spaces)"
    elif char:
        why = f"{show(char)} cannot start a value (quote the value)"
    elif why.startswith("but "):  # "expected a single document in the stream, but found ..."
        why = f"{err.context}, {why}"
    elif "maximum nesting depth" in why:  # libyaml's own limit (1000), met first in brackets
        why = f"nests deeper than {MAX_DEPTH} levels"
    elif err.context and opened and mark and opened.line != mark.line:
        why = f"{why} ({err.context} on line {opened.line + 1})"
    elif err.context and why != err.context and not err.problem_mark:
        why = f"{err.context}: {why}"
    return ConfigError(why, file=path, at=_at(mark) if mark else "")


def _runaway_quote(text: str, mark: yaml.Mark) -> yaml.Mark | None:
    """Where a quoted value opens that runs over lines into the error at `mark`.

    YAML lets a quoted value span lines, so a missing closing quote ends at the
    next quote character and the parser fails there, lines later; release.yaml
    has no multi-line quoted values, so such a value is the likely culprit.
    """
    lines = text.split("\n", mark.line + 1)[: mark.line + 1]
    upto = "\n".join(lines)
    near = "".join(lines[-2:])
    # PyYAML's scanner is slow on pathological text: look only where it can pay.
    if len(upto) > RUNAWAY_SCAN or ('"' not in near and "'" not in near):
        return None
    found = None
    try:
        for token in yaml.scan(upto):
            if isinstance(token, yaml.ScalarToken) and token.style in ("'", '"'):
                start, end = token.start_mark, token.end_mark
                if start.line < end.line and end.line >= mark.line - 1:
                    found = start
    except yaml.YAMLError:
        pass  # the scanner stops where the parser did, or earlier
    return found


def _char(text: str, mark: yaml.Mark) -> str:
    lines = text.split("\n", mark.line + 1)
    line = lines[mark.line] if mark.line < len(lines) else ""
    return line[mark.column : mark.column + 1]


def _tag(tag: str) -> str:
    """`tag:yaml.org,2002:binary` -> `!!binary`, as the user wrote it."""
    return "!!" + tag.removeprefix(CORE) if tag.startswith(CORE) else tag


class _Composer(Composer):
    """PyYAML's composer, with every limit checked before a node is built."""

    def __init__(self, path: Path) -> None:
        Composer.__init__(self)
        self.path, self.depth, self.nodes, self.aliased = path, 0, 0, 0
        self.open_anchors: set[str] = set()

    def refuse(self, mark: yaml.Mark, why: str) -> ConfigError:
        return ConfigError(why, file=self.path, at=_at(mark))

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            return self._alias(self.get_event())
        event = self.peek_event()
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.refuse(event.start_mark, f"holds more than {MAX_NODES:,} values")
        if self.depth >= MAX_DEPTH:
            raise self.refuse(event.start_mark, f"nests deeper than {MAX_DEPTH} levels")
        anchor = event.anchor
        if anchor in self.anchors:
            first = self.anchors[anchor].start_mark.line + 1
            raise self.refuse(
                event.start_mark, f"anchor &{anchor} is repeated (first on line {first})"
            )
        self.depth += 1
        self.open_anchors.add(anchor)
        node = super().compose_node(parent, index)
        self.open_anchors.discard(anchor)
        self.depth -= 1
        self._check(node, is_key=isinstance(parent, MappingNode) and index is None)
        return node

    def _alias(self, event: AliasEvent) -> Node:
        name = event.anchor
        node = self.anchors.get(name)
        if node is None:
            raise self.refuse(event.start_mark, f"alias *{name} has no anchor &{name} before it")
        if name in self.open_anchors:
            raise self.refuse(event.start_mark, f"alias *{name} is inside the value it names")
        self.aliased += node.size  # type: ignore[attr-defined]
        if self.aliased > MAX_ALIASED:
            why = f"aliases expand to more than {MAX_ALIASED:,} values"
            raise self.refuse(event.start_mark, why)
        return node

    def _check(self, node: Node, *, is_key: bool) -> None:
        """Size the node, and refuse tags, lone surrogates and repeated keys."""
        if node.tag == MERGE and not is_key:
            node.tag = STR  # `<<` is a merge only as a key
        if node.tag not in ALLOWED_TAGS:
            why = f"tag {_tag(node.tag)} is not allowed: write text, numbers, true/false, lists"
            raise self.refuse(node.start_mark, why + " and mappings")
        if isinstance(node, ScalarNode):
            node.size = 1  # type: ignore[attr-defined]
            node.value = self._characters(node)
        elif isinstance(node, SequenceNode):
            node.size = 1 + sum(item.size for item in node.value)  # type: ignore[attr-defined]
        else:
            node.size = 1 + sum(k.size + v.size for k, v in node.value)  # type: ignore[attr-defined]
            self._unique_keys(node)

    def _characters(self, node: ScalarNode) -> str:
        """Join JSON-style surrogate pairs ("\\ud83d\\ude80" is one rocket); refuse halves."""
        value = PAIR.sub(
            lambda m: m.group().encode("utf-16", "surrogatepass").decode("utf-16"), node.value
        )
        lone = SURROGATE.search(value)
        if lone:
            why = f"{show(lone.group())} is half of a surrogate pair: write the character itself"
            raise self.refuse(node.start_mark, why)
        return value

    def _unique_keys(self, node: MappingNode) -> None:
        seen: dict[Any, yaml.Mark] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode):
                raise self.refuse(key.start_mark, "a key must be text, not a list or mapping")
            if key.tag == MERGE:
                continue
            # Keys as Python reads them: 1, 0x1 and 1.0 are one key, "1" another.
            same = key.value if key.tag == STR else (self.construct_object(key),)  # type: ignore[attr-defined]
            first = seen.setdefault(same, key.start_mark)
            if first is not key.start_mark:
                shown = show(key.value) if key.tag == STR else key.value
                why = f"key {shown} is repeated (first on line {first.line + 1})"
                raise self.refuse(key.start_mark, why)


class _Constructor(SafeConstructor):
    """The core schema only; numbers keep their text; no dates, bytes or objects."""

    def construct_number(self, node: ScalarNode) -> Int | Float:
        if len(node.value) > NUMBER_MAX:
            raise self._refuse(node, f"a number of more than {NUMBER_MAX} characters")
        try:
            value = (
                super().construct_yaml_float(node)
                if node.tag == FLOAT
                else super().construct_yaml_int(node)
            )
        except (ValueError, IndexError, OverflowError):
            raise self._refuse(
                node, f"{show(node.value)} is not a number ({_tag(node.tag)})"
            ) from None
        number = (Float if node.tag == FLOAT else Int)(value)
        number.source = node.value
        return number

    def construct_bool(self, node: ScalarNode) -> bool:
        value = self.construct_scalar(node)
        if value.lower() not in self.bool_values:
            raise self._refuse(node, f"{show(value)} is not true or false")
        return self.bool_values[value.lower()]

    def _refuse(self, node: Node, why: str) -> ConfigError:
        return ConfigError(why, file=self.path, at=_at(node.start_mark))  # type: ignore[attr-defined]

    yaml_constructors: ClassVar[dict] = {
        STR: SafeConstructor.construct_yaml_str,
        SEQ: SafeConstructor.construct_yaml_seq,
        MAP: SafeConstructor.construct_yaml_map,
        NULL: SafeConstructor.construct_yaml_null,
        BOOL: construct_bool,
        INT: construct_number,
        FLOAT: construct_number,
    }
    yaml_multi_constructors: ClassVar[dict] = {}


class _Resolver(Resolver):
    """YAML 1.1 resolution without dates (kept as written) or `=` (a value tag nothing reads)."""

    yaml_implicit_resolvers: ClassVar[dict] = {
        first: [(tag, rx) for tag, rx in rules if tag not in (CORE + "timestamp", CORE + "value")]
        for first, rules in Resolver.yaml_implicit_resolvers.items()
    }


class PyLoader(_Composer, Reader, Scanner, Parser, _Constructor, _Resolver):
    """PyYAML's own events (it reads surrogate escapes), composed and constructed here."""

    def __init__(self, text: str, path: Path) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        _Composer.__init__(self, path)
        _Constructor.__init__(self)
        _Resolver.__init__(self)


if CParser:

    class Loader(_Composer, CParser, _Constructor, _Resolver):
        """libyaml's events, composed and constructed here."""

        def __init__(self, text: str, path: Path) -> None:
            CParser.__init__(self, text)
            _Composer.__init__(self, path)
            _Constructor.__init__(self)
            _Resolver.__init__(self)
else:  # pragma: no cover
    Loader = PyLoader  # type: ignore[misc]
