"""Declaring an option once: ``option(...)`` fields, their checks, their command-line flags.

Every user-facing option of a job is one field of a frozen dataclass in
``seqgan_rl.config`` declared with ``option(default, doc, <checks>)``: its name,
type (the annotation), default, one-line doc and validation live there and
nowhere else. From those declarations:

* ``check_options`` validates an instance (one message format for every field:
  ``"d_epochs must be > 0, got 0"``);
* ``add_option_flags`` adds one ``--flag`` per field to an ``argparse`` parser
  (help = the doc, ``choices`` = the declared choices, the value parsed by the
  field's type) and ``option_overrides`` reads them back as field overrides;
* ``parse_option_value`` turns a string into a field's value (the CLI, and
  ``seqgan-rl tune --grid FIELD=V1,V2``).

A field declared with ``group(...)`` holds a nested options dataclass: a group of
related options (``TrainConfig.discriminator``, ``TrainConfig.schedule``), as
RLlib groups its ``AlgorithmConfig``. Every option keeps one flat name
(``flat_names``: ``d_steps`` is ``discriminator.d_steps``), unique across the
groups, and that name is its flag, its ``with_overrides`` keyword, its Tune
grid axis and its key in a ``config.json`` of the flat form written before the
groups; a prefixed group (``TrainConfig.mle``) adds its name (``--mle-epochs``).
The RLlib-side settings are built from the same instances
(``seqgan_rl.rllib.settings``), never from a copy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, TypeVar

from seqgan_rl.errors import ConfigError

T = TypeVar("T", bound="Options")

_MISSING: Any = dataclasses.MISSING


def option(
    default: Any = _MISSING,
    doc: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    choices: tuple[Any, ...] | None = None,
    noun: str | None = None,
    flags: tuple[str, ...] = (),
    check: Callable[[Any], None] | None = None,
    name: str | None = None,
) -> Any:
    """A dataclass field that is a user-facing option.

    Args:
        default: the default value (or ``factory`` for a mutable one).
        doc: one line for ``--help`` and the docs: what it is and the paper's value.
        gt, ge, le: the value must be > ``gt``, >= ``ge``, <= ``le``.
        choices: the allowed values (also the flag's ``choices``).
        noun: how a wrong choice is named in the error (``"unknown algorithm 'x'"``);
            default: ``"<field> must be one of ..."``.
        flags: extra flag spellings besides ``--<field-name>`` (e.g. ``--batches``).
        check: a further check of a value the declarative ones cannot express; raises ``ConfigError``
            naming the option (e.g. ``reward_model``: a name or ``module:function``).
        name: the option's flat name (flag, override, grid axis) where it differs from the field's, which
            its group's name would repeat (``discriminator.cnn_sizes`` is ``--discriminator``).
    """
    if not doc:
        raise TypeError("option() needs a doc: every option says what it is")
    metadata = {"doc": doc, "gt": gt, "ge": ge, "le": le, "choices": choices, "noun": noun, "flags": flags,
                "check": check, "name": name}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def group(cls: type, doc: str, *, prefixed: bool = False) -> Any:
    """A dataclass field holding a group of options (an options dataclass, its defaults by default).

    Args:
        cls: the group's options dataclass.
        doc: one line: what the group's options set (its section of ``--help``).
        prefixed: whether its options' flat names carry the group's name (``mle_epochs``, ``--mle-epochs``):
            for a group that is also a job of its own (``PretrainConfig``), whose names would collide.
    """
    return dataclasses.field(default_factory=cls, metadata={"doc": doc, "prefixed": prefixed})


def option_fields(cls: type) -> tuple[dataclasses.Field, ...]:
    """The fields of an options dataclass (each declared with ``option``)."""
    return dataclasses.fields(cls)


@cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of each field (``from __future__ import annotations`` makes them strings)."""
    return typing.get_type_hints(cls)


def is_options_class(kind: Any) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


def flat_name(f: dataclasses.Field) -> str:
    """The name an option is given by outside its group: its flag, override and grid name."""
    return f.metadata.get("name") or f.name


@cache
def flat_names(cls: type) -> dict[str, tuple[str, ...]]:
    """Flat name → path of attributes to the option (``"d_steps"`` → ``("discriminator", "d_steps")``).

    Raises:
        TypeError: two options of ``cls`` with one flat name: a flag, an override or a grid axis would be
            ambiguous (a declaration error, found at import).
    """
    names: dict[str, tuple[str, ...]] = {}
    for f in option_fields(cls):
        kind = field_types(cls)[f.name]
        if is_options_class(kind):
            prefix = f"{f.name}_" if f.metadata.get("prefixed") else ""
            inner = {f"{prefix}{name}": (f.name, *path) for name, path in flat_names(kind).items()}
        else:
            inner = {flat_name(f): (f.name,)}
        clashes = sorted(set(inner) & set(names))
        if clashes:
            raise TypeError(f"{cls.__name__}: option name(s) {', '.join(clashes)} declared twice "
                            f"({', '.join('.'.join(names[c]) + ' and ' + '.'.join(inner[c]) for c in clashes)})")
        names.update(inner)
    return names


def flat_field(cls: type, name: str) -> tuple[type, dataclasses.Field]:
    """The options dataclass declaring the option of flat name ``name``, and its field."""
    *groups, last = flat_names(cls)[name]
    for step in groups:
        cls = field_types(cls)[step]
    return cls, next(f for f in option_fields(cls) if f.name == last)


def flat_dict(instance: Any) -> dict[str, Any]:
    """Every option of ``instance`` by its flat name (how messages and the flat form name them)."""
    values = {}
    for name, path in flat_names(type(instance)).items():
        value = instance
        for step in path:
            value = getattr(value, step)
        values[name] = value
    return values


def optional_type(kind: Any) -> Any:
    """``T`` for an annotation ``T | None`` (an option whose ``None`` means "a default chosen elsewhere"),
    else ``None``."""
    args = typing.get_args(kind)
    if type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None))
    return None


def check_options(instance: Any) -> None:
    """Raise ``ConfigError`` naming the first field whose value breaks its declared checks.

    ``None`` is accepted for a field declared ``T | None`` (its default is chosen elsewhere, e.g. per
    algorithm).
    """
    for f in option_fields(type(instance)):
        value = getattr(instance, f.name)
        kind = field_types(type(instance))[f.name]
        if is_options_class(kind):
            check_options(value)
            continue
        if value is None and optional_type(kind) is not None:
            continue
        name, meta = flat_name(f), f.metadata
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            if meta.get("noun"):
                raise ConfigError(f"unknown {meta['noun']} {value!r}; known: {', '.join(map(str, choices))}")
            raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):  # nan passes no comparison, inf passes "> 0"
            raise ConfigError(f"{name} must be a finite number, got {value}")
        low, high = meta.get("ge"), meta.get("le")
        if low is not None and high is not None and not low <= value <= high:
            raise ConfigError(f"{name} must be in [{_bound(low)}, {_bound(high)}], got {value}")
        if meta.get("gt") is not None and not value > meta["gt"]:
            raise ConfigError(f"{name} must be > {_bound(meta['gt'])}, got {value}")
        if low is not None and high is None and not value >= low:
            raise ConfigError(f"{name} must be >= {_bound(low)}, got {value}")
        if meta.get("check") is not None:
            meta["check"](value)


def _bound(limit: float) -> str:
    """A bound as a message shows it: whole numbers in full (a seed's 2147483647, not 2.14748e+09), others
    as ``:g``."""
    return str(int(limit)) if float(limit).is_integer() else f"{limit:g}"


def with_overrides(instance: Any, overrides: Mapping[str, Any], *, check: bool = True) -> Any:
    """A copy with options replaced, each given by its flat name (validated unless ``check=False``);
    ``None`` values are ignored.

    ``d_steps`` reaches ``discriminator.d_steps`` and ``mle_epochs`` reaches ``mle.epochs`` (``flat_names``).
    ``check=False`` is for builders that validate later, as RLlib's ``AlgorithmConfig.validate``.
    """
    names = flat_names(type(instance))
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
    updated = _replaced(instance, {names[name]: value for name, value in given.items()})
    if check:
        check_options(updated)
    return updated


def _replaced(instance: Any, values: Mapping[tuple[str, ...], Any]) -> Any:
    """A copy of ``instance`` with the value at each path (attribute names, groups first) replaced."""
    changes: dict[str, Any] = {path[0]: value for path, value in values.items() if len(path) == 1}
    for head in {path[0] for path in values if len(path) > 1}:
        inner = {path[1:]: value for path, value in values.items() if len(path) > 1 and path[0] == head}
        changes[head] = _replaced(getattr(instance, head), inner)
    return dataclasses.replace(instance, **changes)


def to_dict(instance: Any) -> dict[str, Any]:
    """The options as JSON-ready values (groups as nested dicts, tuples as lists by ``json``)."""
    return dataclasses.asdict(instance)


def from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Inverse of ``to_dict``: JSON lists back to tuples, nested dicts back to options; validated.

    A mapping keyed by flat names (the flat ``config.json`` of a run started before its options were
    grouped) is read through ``flat_names`` too, so such a run still resumes. Raises ``ConfigError``
    naming an unknown field (a ``config.json`` written by another version) instead of a ``TypeError``.
    """
    types = field_types(cls)
    if not set(data) <= set(types):
        data = _nested(cls, data)
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
    values = {name: _from_json(types[name], value) for name, value in data.items()}
    instance = cls(**values)
    check_options(instance)
    return instance


def _nested(cls: type, flat: Mapping[str, Any]) -> dict[str, Any]:
    """``to_dict``'s nesting of a mapping keyed by flat names (a group given whole, as the flat form gave
    ``mle``, stays whole); a key that is neither is kept, for ``from_dict`` to name."""
    names = flat_names(cls)
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *groups, last = names.get(key, (key,))
        level = nested
        for step in groups:
            level = level.setdefault(step, {})
        level[last] = value
    return nested


def _from_json(kind: Any, value: Any) -> Any:
    if is_options_class(kind):
        return from_dict(kind, value)
    if isinstance(value, dict):
        return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return value


class Options:
    """Base of the options dataclasses: validation, overrides and ``config.json`` from the declarations."""

    def validate(self: T) -> T:
        """Raise ``ConfigError`` naming the field of any impossible value; return self."""
        check_options(self)
        return self

    def with_overrides(self: T, **overrides: Any) -> T:
        """A validated copy with the given options replaced, by flat name (``None`` values are ignored;
        ``d_steps`` reaches ``discriminator.d_steps``, ``mle_epochs`` reaches ``mle.epochs``)."""
        return with_overrides(self, overrides)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """Inverse of ``to_dict`` (``--resume``: a run continues with the configuration it started with)."""
        return from_dict(cls, data)


def parse_option_value(cls: type, name: str, text: str) -> Any:
    """The value of the option of flat name ``name`` of ``cls`` written as ``text`` (a flag's argument, a
    grid value)."""
    owner, f = flat_field(cls, name)
    kind = field_types(owner)[f.name]
    try:
        return _parser(kind)(text)
    except (ValueError, argparse.ArgumentTypeError) as error:
        raise ConfigError(f"{name}: {text!r} is not a valid {getattr(kind, '__name__', kind)} ({error})") from None


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parse_json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error.msg}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"emb_dim\": 16}'")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}


def _parser(kind: Any) -> Callable[[str], Any]:
    kind = optional_type(kind) or kind
    if kind is bool:
        return _parse_bool
    if kind in (int, float, str):
        return kind
    if typing.get_origin(kind) is dict:
        return _parse_json_object
    raise TypeError(f"no command-line form for options of type {kind!r}")


def add_option_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    title: str,
    presets: Mapping[str, Any] | None = None,
) -> None:
    """One flag per option of ``cls`` (``--<flat-name>``), default ``None`` (= the preset's): the options of
    ``cls`` itself under ``title``, each group's in a section of its own.

    ``presets`` (name → instance of ``cls``) puts each preset's value in the
    help, so ``--help`` shows what a flag overrides.
    """
    _add_flags(parser, parser.add_argument_group(title), cls, "", presets)


def _add_flags(parser: argparse.ArgumentParser, section: argparse._ArgumentGroup, cls: type, prefix: str,
               presets: Mapping[str, Any] | None) -> None:
    for f in option_fields(cls):
        kind = field_types(cls)[f.name]
        if is_options_class(kind):
            nested = None if presets is None else {k: getattr(v, f.name) for k, v in presets.items()}
            inner = f"{prefix}{f.name}_" if f.metadata.get("prefixed") else prefix
            _add_flags(parser, parser.add_argument_group(f"{f.name} options", f.metadata["doc"]), kind, inner,
                       nested)
            continue
        dest = f"{prefix}{flat_name(f)}"
        spellings = [f"--{dest.replace('_', '-')}", *(f.metadata["flags"] if not prefix else ())]
        help_text = f.metadata["doc"] + _preset_note(cls, f, presets)
        help_text = help_text.replace("%", "%%")
        choices = f.metadata.get("choices")
        shown_kind = optional_type(kind) or kind
        metavar = None if choices else ("JSON" if typing.get_origin(kind) is dict else shown_kind.__name__.upper())
        section.add_argument(*spellings, dest=dest, type=_parser(kind), choices=choices, default=None,
                             help=help_text, metavar=metavar)


def _preset_note(cls: type, f: dataclasses.Field, presets: Mapping[str, Any] | None) -> str:
    """What ``--help`` adds to an option's doc: each preset's value, or how a value left unset is chosen."""
    if not presets:
        return ""
    if all(getattr(p, f.name) is None for p in presets.values()):
        # resolved later: per algorithm (``default_note``) or from another option (its doc)
        default_note = getattr(cls, "default_note", None)
        note = default_note(f.name) if default_note else ""
        return f" [{note}]" if note else ""
    values = {name: getattr(p, f.name) for name, p in presets.items()}
    if len({repr(v) for v in values.values()}) == 1:
        return f" [{_shown(next(iter(values.values())))}]"
    return " [" + ", ".join(f"{name} {_shown(v)}" for name, v in values.items()) + "]"


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value) if value else "{} (the paper's)"
    return str(value)


def option_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of ``cls`` given on the command line (``None`` = not given), by flat name (each flag's
    ``dest``), as ``with_overrides`` takes them."""
    return {name: getattr(args, name) for name in flat_names(cls) if getattr(args, name, None) is not None}
