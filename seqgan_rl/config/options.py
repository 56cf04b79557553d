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

A field whose type is itself an options dataclass (``TrainConfig.mle``) is
reached with a prefix (``--mle-epochs``). The RLlib-side settings are built
from the same instances (``seqgan_rl.rllib.settings``), never from a copy.
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
    """
    if not doc:
        raise TypeError("option() needs a doc: every option says what it is")
    metadata = {"doc": doc, "gt": gt, "ge": ge, "le": le, "choices": choices, "noun": noun, "flags": flags,
                "check": check}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def option_fields(cls: type) -> tuple[dataclasses.Field, ...]:
    """The fields of an options dataclass (each declared with ``option``)."""
    return dataclasses.fields(cls)


@cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of each field (``from __future__ import annotations`` makes them strings)."""
    return typing.get_type_hints(cls)


def is_options_class(kind: Any) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


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
        meta = f.metadata
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            if meta.get("noun"):
                raise ConfigError(f"unknown {meta['noun']} {value!r}; known: {', '.join(map(str, choices))}")
            raise ConfigError(f"{f.name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):  # nan passes no comparison, inf passes "> 0"
            raise ConfigError(f"{f.name} must be a finite number, got {value}")
        low, high = meta.get("ge"), meta.get("le")
        if low is not None and high is not None and not low <= value <= high:
            raise ConfigError(f"{f.name} must be in [{_bound(low)}, {_bound(high)}], got {value}")
        if meta.get("gt") is not None and not value > meta["gt"]:
            raise ConfigError(f"{f.name} must be > {_bound(meta['gt'])}, got {value}")
        if low is not None and high is None and not value >= low:
            raise ConfigError(f"{f.name} must be >= {_bound(low)}, got {value}")
        if meta.get("check") is not None:
            meta["check"](value)


def _bound(limit: float) -> str:
    """A bound as a message shows it: whole numbers in full (a seed's 2147483647, not 2.14748e+09), others
    as ``:g``."""
    return str(int(limit)) if float(limit).is_integer() else f"{limit:g}"


def with_overrides(instance: Any, overrides: Mapping[str, Any], *, check: bool = True) -> Any:
    """A copy with fields replaced (validated unless ``check=False``); ``None`` values are ignored.

    Nested options dataclasses take their fields with the field's name as
    prefix (``mle_epochs`` reaches ``mle.epochs``). ``check=False`` is for
    builders that validate later, as RLlib's ``AlgorithmConfig.validate``.
    """
    cls = type(instance)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    changes: dict[str, Any] = {}
    for f in option_fields(cls):
        if is_options_class(field_types(cls)[f.name]):
            prefix = f"{f.name}_"
            nested = {k.removeprefix(prefix): overrides.pop(k) for k in list(overrides) if k.startswith(prefix)}
            if nested:
                changes[f.name] = with_overrides(getattr(instance, f.name), nested, check=check)
    unknown = sorted(set(overrides) - {f.name for f in option_fields(cls)})
    if unknown:
        raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
    updated = dataclasses.replace(instance, **changes, **overrides)
    if check:
        check_options(updated)
    return updated


def to_dict(instance: Any) -> dict[str, Any]:
    """The options as JSON-ready values (nested options as dicts, tuples as lists by ``json``)."""
    return dataclasses.asdict(instance)


def from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Inverse of ``to_dict``: JSON lists back to tuples, nested dicts back to options; validated.

    Raises ``ConfigError`` naming an unknown field (a ``config.json`` written by
    another version) instead of a ``TypeError``.
    """
    types = field_types(cls)
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise ConfigError(f"unknown config field(s): {', '.join(unknown)}")
    values = {name: _from_json(types[name], value) for name, value in data.items()}
    instance = cls(**values)
    check_options(instance)
    return instance


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
        """A validated copy with the given fields replaced (``None`` values are ignored; ``<field>_<name>``
        reaches a nested options field, e.g. ``mle_epochs``)."""
        return with_overrides(self, overrides)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
        """Inverse of ``to_dict`` (``--resume``: a run continues with the configuration it started with)."""
        return from_dict(cls, data)


def parse_option_value(cls: type, name: str, text: str) -> Any:
    """The value of field ``name`` of ``cls`` written as ``text`` (a flag's argument, a grid value)."""
    kind = field_types(cls)[name]
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
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    prefix: str = "",
    presets: Mapping[str, Any] | None = None,
    skip: frozenset[str] = frozenset(),
) -> None:
    """One flag per field of ``cls`` (nested options under ``--<field>-``), default ``None`` (= the preset's).

    ``presets`` (name → instance of ``cls``) puts each preset's value in the
    help, so ``--help`` shows what a flag overrides.
    """
    for f in option_fields(cls):
        if f.name in skip:
            continue
        kind = field_types(cls)[f.name]
        if is_options_class(kind):
            nested = None if presets is None else {k: getattr(v, f.name) for k, v in presets.items()}
            add_option_flags(parser, kind, prefix=f"{prefix}{f.name}_", presets=nested)
            continue
        dest = f"{prefix}{f.name}"
        spellings = [f"--{dest.replace('_', '-')}", *(f.metadata["flags"] if not prefix else ())]
        help_text = f.metadata["doc"]
        default_note = getattr(cls, "default_note", None)
        unset_in_presets = bool(presets) and all(getattr(p, f.name) is None for p in presets.values())
        if unset_in_presets:  # resolved later: per algorithm (``default_note``) or from another option (its doc)
            note = default_note(f.name) if default_note else ""
            help_text += f" [{note}]" if note else ""
        elif presets:
            values = {name: getattr(p, f.name) for name, p in presets.items()}
            shown = ", ".join(f"{name} {_shown(v)}" for name, v in values.items())
            same = len({repr(v) for v in values.values()}) == 1
            help_text += f" [{_shown(next(iter(values.values())))}]" if same else f" [{shown}]"
        help_text = help_text.replace("%", "%%")
        choices = f.metadata.get("choices")
        shown_kind = optional_type(kind) or kind
        metavar = None if choices else ("JSON" if typing.get_origin(kind) is dict else shown_kind.__name__.upper())
        parser.add_argument(*spellings, dest=dest, type=_parser(kind), choices=choices, default=None, help=help_text,
                           metavar=metavar)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value) if value else "{} (the paper's)"
    return str(value)


def option_overrides(args: argparse.Namespace, cls: type, *, prefix: str = "") -> dict[str, Any]:
    """The fields of ``cls`` given on the command line (``None`` = not given), by ``with_overrides`` name."""
    given: dict[str, Any] = {}
    for f in option_fields(cls):
        kind = field_types(cls)[f.name]
        if is_options_class(kind):
            given.update(option_overrides(args, kind, prefix=f"{prefix}{f.name}_"))
        elif getattr(args, f"{prefix}{f.name}", None) is not None:
            given[f"{prefix}{f.name}"] = getattr(args, f"{prefix}{f.name}")
    return given
