//! The encoder of plain data, in Python, shared by the drivers: a value a solution returns
//! crosses to the process that judges it as JSON that keeps its type (`{"t": [...]}` for a tuple,
//! `{"i": "ff"}` for an int of any size, `{"f": float.hex(x)}` for a float, `inf` and `nan`
//! included, `{"d": [[k, v], ...]}` for a dict with keys of any kind; see `value::decode_plain`).
//! A subclass of a built-in type is converted to its base value through the base type's own C
//! methods, so a lying `__eq__` or `__iter__` cannot reach the judge; anything else is a
//! `TypeError` naming the type.

/// `_plain(x)`: the encoder.
pub const ENCODER: &str = r#"def _plain(x, depth=0):
    if depth > 100:
        raise TypeError("the value is nested more than 100 levels deep")
    t = type(x)
    if x is None or t is bool:
        return x
    if issubclass(t, int):
        return {"i": format(int.__int__(x), "x")}
    if issubclass(t, float):
        return {"f": float.hex(float.__float__(x))}
    if issubclass(t, complex):
        return {"c": [float.hex(complex.real.__get__(x)), float.hex(complex.imag.__get__(x))]}
    if issubclass(t, str):
        return str.__getitem__(x, slice(None))
    if issubclass(t, bytes):
        return {"b": bytes.hex(x)}
    if issubclass(t, list):
        return [_plain(v, depth + 1) for v in list.__iter__(x)]
    if issubclass(t, tuple):
        return {"t": [_plain(v, depth + 1) for v in tuple.__iter__(x)]}
    if issubclass(t, dict):
        return {"d": [[_plain(k, depth + 1), _plain(v, depth + 1)] for k, v in dict.items(x)]}
    if issubclass(t, frozenset):
        return {"fs": [_plain(v, depth + 1) for v in frozenset.__iter__(x)]}
    if issubclass(t, set):
        return {"s": [_plain(v, depth + 1) for v in set.__iter__(x)]}
    if getattr(t, "__module__", None) == "numpy" and hasattr(x, "item"):
        return _plain(x.item(), depth + 1)
    raise TypeError("a value of type %r is not plain data (built-in types only)" % (t.__name__,))
"#;
