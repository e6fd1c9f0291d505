"""invokedynamic as javac 17 emits it, a mixin of jvmvm.JvmVM: string concatenation
(StringConcatFactory), lambdas and method references (LambdaMetafactory: a hidden class per call
site, whose frames stack traces leave out, as the JVM's), and records' toString/equals/hashCode
(ObjectMethods). Any other bootstrap method is refused, naming it."""

from __future__ import annotations

from dataclasses import dataclass

from cerebro.binread import FormatError
from cerebro.loaders.classfile import Bootstrap, Handle, JvmClass, method_ref
from cerebro.loaders.dex import Method
from cerebro.loaders.dexexc import OBJECT, JObject
from cerebro.loaders.dexlib_lang import JBox, StringPlaceholder, _box_hash, new_string
from cerebro.loaders.dexvalues import bits32, bits64, i32
from cerebro.loaders.dexvm import new_instance
from cerebro.loaders.jvmops import pop_words, push_value

CONCAT = "Ljava/lang/invoke/StringConcatFactory;"
LAMBDA = "Ljava/lang/invoke/LambdaMetafactory;"
RECORD = "Ljava/lang/runtime/ObjectMethods;"
PRIMITIVES = "ZBCSIJFD"
CAPTURED = "<captured>"
FLAG_SERIALIZABLE, FLAG_MARKERS, FLAG_BRIDGES = 1, 2, 4  # LambdaMetafactory.altMetafactory flags
HANDLE_CALLS = {5: "virtual", 6: "static", 7: "direct", 9: "interface"}  # method handle kind -> invoke kind


@dataclass
class LambdaCode:
    """The one method of a lambda's class: calls `target` with the captured values, then its own arguments."""
    target: Handle
    captured: tuple[str, ...]  # types of the captured values
    params: tuple[str, ...]  # the instantiated method type: what callers pass
    ret: str  # what the interface method returns


def _adapt(value: object, have: str, want: str) -> object:
    """Boxing, unboxing and widening between a lambda's interface types and its target's."""
    if want == "V":
        return None
    if have in PRIMITIVES and want not in PRIMITIVES:
        return JBox(have, value)
    if have not in PRIMITIVES and want in PRIMITIVES:
        value, have = (value.value, value.kind) if isinstance(value, JBox) else (value, want)
    if have in "BSCIJ" and want in "FD":
        return bits64(float(value)) if want == "D" else bits32(float(value))
    return value


class InvokeDynamic:
    """Needs JvmVM's classes, call, stringify, equals, hash_code, allocate and call_sites."""

    def invoke_dynamic(self, f, ins) -> None:
        (boot_index, name, _desc), (params, ret) = ins.a, ins.b
        cls = self.classes[f.method.ref.class_name][1]
        if boot_index >= len(cls.bootstraps):
            raise FormatError(f"jar: invokedynamic names bootstrap method {boot_index} of {len(cls.bootstraps)}")
        boot = cls.bootstraps[boot_index]
        s = f.stack
        values = pop_words(s, ins.pops)
        owner = boot.handle.ref.class_name
        if owner == CONCAT:
            result = self.concat(cls, boot, params, values)
        elif owner == RECORD:
            result = self.record_method(cls, boot, name, values)
        elif owner == LAMBDA:
            key = (f.method.ref.class_name, str(f.method.ref), ins.pc)
            if key not in self.call_sites:
                self.call_sites[key] = self.lambda_class(cls, boot, name, params, ret)
            self.allocate(256)
            result = JObject(self.call_sites[key], {CAPTURED: values})
        else:
            raise FormatError(f"jar: invokedynamic with bootstrap method {boot.handle.ref} is not supported")
        push_value(s, result, ret in ("J", "D"))

    def concat(self, cls: JvmClass, boot: Bootstrap, params: tuple[str, ...], values: list) -> str:
        """StringConcatFactory: makeConcatWithConstants's recipe (\\1 an argument, \\2 a constant), or makeConcat."""
        pool = cls.pool
        kinds = [p if p in PRIMITIVES else "L" for p in params]
        if boot.handle.ref.name == "makeConcat":
            return new_string(self, *(self.stringify(v, k) for v, k in zip(values, kinds, strict=True)))
        recipe = pool.loadable(boot.args[0], False)[1] if boot.args else None
        if not isinstance(recipe, str):
            raise FormatError("jar: makeConcatWithConstants without a recipe string")
        if recipe.count("\1") != len(values) or recipe.count("\2") > len(boot.args) - 1:
            raise FormatError(f"jar: string concatenation recipe wants {recipe.count(chr(1))} arguments and "
                              f"{recipe.count(chr(2))} constants, the call site has {len(values)} and "
                              f"{len(boot.args) - 1}")
        constants = iter(str(pool.loadable(a, False)[1]) for a in boot.args[1:])
        args = iter(zip(values, kinds, strict=True))
        parts = []
        for ch in recipe:
            if ch == "\1":
                v, k = next(args)
                parts.append(self.stringify(v, k))
            else:
                parts.append(next(constants) if ch == "\2" else ch)
        return new_string(self, *parts)

    def lambda_class(self, cls: JvmClass, boot: Bootstrap, name: str, captured: tuple[str, ...], iface: str) -> str:
        """A hidden class implementing iface's method `name` by calling the implementation method."""
        pool, args = cls.pool, boot.args
        if len(args) < 3:
            raise FormatError("jar: LambdaMetafactory call site with fewer than 3 arguments")
        erased, target, (params, ret) = pool.method_type(args[0]), pool.handle(args[1]), pool.method_type(args[2])
        if target.kind not in (*HANDLE_CALLS, 8):
            raise FormatError(f"jar: lambda implemented by a field handle ({target.ref})")
        interfaces, bridges = [iface], [erased]
        flags = pool.integer(args[3], "altMetafactory flags") if len(args) > 3 else 0
        rest = list(args[4:])
        if flags & FLAG_SERIALIZABLE:
            interfaces.append("Ljava/io/Serializable;")
        if flags & FLAG_MARKERS and rest:
            count, rest = pool.integer(rest[0], "a marker count"), rest[1:]
            interfaces += [pool.class_name(i) for i in rest[:count]]
            rest = rest[count:]
        if flags & FLAG_BRIDGES and rest:
            bridges += [pool.method_type(i) for i in rest[1:1 + pool.integer(rest[0], "a bridge count")]]
        desc = f"{cls.name[:-1]}$$Lambda${len(self.call_sites)};"
        code = LambdaCode(target, captured, params, ret)
        methods = [Method(method_ref(desc, name, "(" + "".join(p) + ")" + r, "lambda"), k, 1, code)
                   for k, (p, r) in enumerate(dict.fromkeys(bridges))]
        self.classes[desc] = (None, JvmClass(desc, 0x1010, OBJECT, None, virtual_methods=methods,
                                             interfaces=tuple(interfaces)))
        self.initialised.add(desc)
        return desc

    def call_lambda(self, code: LambdaCode, args: list) -> object:
        target = code.target.ref
        incoming = list(args[0].fields[CAPTURED]) + list(args[1:])
        have = code.captured + code.params
        if code.target.kind == 8:  # a constructor reference: Foo::new
            obj = new_instance(self, target.class_name)
            values = [_adapt(v, h, w) for v, h, w in zip(incoming, have, target.params, strict=True)]
            result = self.call(target, [obj, *values], "direct")
            return result if isinstance(obj, StringPlaceholder) else obj
        want = target.params if code.target.kind == 6 else (target.class_name, *target.params)
        values = [_adapt(v, h, w) for v, h, w in zip(incoming, have, want, strict=True)]
        return _adapt(self.call(target, values, HANDLE_CALLS[code.target.kind]), target.ret, code.ret)

    def record_method(self, cls: JvmClass, boot: Bootstrap, name: str, values: list) -> object:
        """A record's toString (`Point[x=1, y=2]`), equals (component by component) or hashCode
        (31 * h + each component's hash), as java.lang.runtime.ObjectMethods makes them."""
        pool = cls.pool
        if len(boot.args) < 2 or name not in ("toString", "equals", "hashCode"):
            raise FormatError(f"jar: ObjectMethods call site for {name!r} is not a record's")
        names = str(pool.loadable(boot.args[1], False)[1])
        fields = [pool.handle(a).ref for a in boot.args[2:]]
        record = values[0]
        if not isinstance(record, JObject):
            raise FormatError("jar: a record method called on something that is not an object")
        parts = [(f, record.fields.get(f.name, None if f.type[0] in "L[" else 0)) for f in fields]
        if name == "toString":
            simple = record.cls[1:-1].rsplit("/", 1)[-1].rsplit("$", 1)[-1]
            shown = [f"{label}={self.stringify(v, f.type if f.type in PRIMITIVES else 'L')}"
                     for label, (f, v) in zip(names.split(";") if names else [], parts, strict=False)]
            return new_string(self, f"{simple}[{', '.join(shown)}]")
        if name == "equals":
            other = values[1]
            return int(isinstance(other, JObject) and other.cls == record.cls
                       and all(self._same_component(f.type, v, other.fields.get(f.name)) for f, v in parts))
        h = 0
        for f, v in parts:
            h = i32(31 * h + (_box_hash(JBox(f.type, v)) if f.type in PRIMITIVES
                              else 0 if v is None else self.hash_code(v)))
        return h

    def _same_component(self, kind: str, a, b) -> bool:
        """A record component in equals: primitives by value (floats by bits), references by Objects.equals."""
        if kind in PRIMITIVES:
            return a == (b or 0)
        return b is None if a is None else self.equals(a, b)
