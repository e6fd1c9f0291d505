"""Java exceptions inside the dex interpreter: Throwable objects, java.lang's exception hierarchy,
the Python exception that carries one through the interpreter, and stack traces as a JVM prints them."""

from __future__ import annotations

from dataclasses import dataclass, field

from cerebro.loaders.dex import class_descriptor

MESSAGE = "<message>"  # a Throwable's detail message, under a key no dex field name can have
TRACE = "<trace>"
CAUSE = "<cause>"  # Throwable.getCause()  # the Java methods on the stack when the Throwable was made, innermost first
OBJECT, THROWABLE = "Ljava/lang/Object;", "Ljava/lang/Throwable;"
# java.lang/java.util's exception hierarchy, parent -> children (other java.lang *Error/*Exception: under
# Error/Exception)
JAVA_LANG_CHILDREN = {
    "Throwable": ["Exception", "Error"], "Error": ["VirtualMachineError"],
    "VirtualMachineError": ["OutOfMemoryError", "StackOverflowError"],
    "Exception": ["RuntimeException", "ReflectiveOperationException", "InterruptedException"],
    "ReflectiveOperationException": ["ClassNotFoundException", "NoSuchMethodException", "IllegalAccessException",
                                      "InstantiationException"],
    "RuntimeException": ["ArithmeticException", "NullPointerException", "IllegalStateException", "ClassCastException",
                         "IllegalArgumentException", "IndexOutOfBoundsException", "NegativeArraySizeException",
                         "UnsupportedOperationException", "ArrayStoreException", "SecurityException",
                         "IllegalMonitorStateException"],
    "IndexOutOfBoundsException": ["ArrayIndexOutOfBoundsException", "StringIndexOutOfBoundsException"],
    "IllegalArgumentException": ["NumberFormatException"]}
JAVA_PARENTS = {f"Ljava/lang/{child};": f"Ljava/lang/{parent};"
                for parent, children in JAVA_LANG_CHILDREN.items() for child in children}
JAVA_PARENTS[THROWABLE] = OBJECT
JAVA_PARENTS.update({  # java.util's and java.lang.reflect's
    "Ljava/util/NoSuchElementException;": "Ljava/lang/RuntimeException;",
    "Ljava/util/ConcurrentModificationException;": "Ljava/lang/RuntimeException;",
    "Ljava/lang/reflect/InvocationTargetException;": "Ljava/lang/ReflectiveOperationException;",
    "Ljava/util/regex/PatternSyntaxException;": "Ljava/lang/IllegalArgumentException;",
    "Ljava/util/IllegalFormatException;": "Ljava/lang/IllegalArgumentException;",
    "Ljava/util/IllegalFormatConversionException;": "Ljava/util/IllegalFormatException;",
    "Ljava/util/UnknownFormatConversionException;": "Ljava/util/IllegalFormatException;",
    "Ljava/util/MissingFormatArgumentException;": "Ljava/util/IllegalFormatException;",
    "Ljava/lang/IllegalThreadStateException;": "Ljava/lang/IllegalArgumentException;",
    "Ljava/io/IOException;": "Ljava/lang/Exception;",
    "Ljava/io/UnsupportedEncodingException;": "Ljava/io/IOException;"})


@dataclass(eq=False)
class JObject:
    cls: str
    fields: dict[str, object] = field(default_factory=dict)


def java_name(desc: str) -> str:
    """Lorg/x/Main; -> org.x.Main; arrays as Class.getName has them: [Ljava/lang/String; -> [Ljava.lang.String;"""
    return desc[1:-1].replace("/", ".") if desc.startswith("L") else desc.replace("/", ".")


def describe(exc: JObject) -> str:
    """Throwable.toString(): the class name, and the message when there is one."""
    message = exc.fields.get(MESSAGE)
    return java_name(exc.cls) if message is None else f"{java_name(exc.cls)}: {message}"


def is_throwable(desc: str) -> bool:
    """java.lang/java.util exceptions and errors: programs may create, throw and catch them."""
    return desc in JAVA_PARENTS or (desc.startswith("Ljava/lang/")
                                    and desc.endswith(("Exception;", "Error;", "Throwable;")))


def stack_trace(exc: JObject, enclosing: tuple = ()) -> str:
    """What Throwable.printStackTrace() prints: toString, then one `\tat` line per Java frame
    (the interpreter reads no line tables, so each is `(Unknown Source)`, as a JVM shows classes
    without debug information), then the cause's, its frames shared with this one as `... N more`."""
    frames = tuple(exc.fields.get(TRACE) or ())
    shared = 0
    while shared < min(len(frames), len(enclosing)) and frames[-1 - shared] == enclosing[-1 - shared]:
        shared += 1
    lines = [describe(exc)] + [f"\tat {java_name(fr[0])}.{fr[1]}({fr[2] if len(fr) > 2 else 'Unknown Source'})"
                               for fr in frames[:len(frames) - shared]]  # fr[2]: the JVM's File.java:line
    if shared:
        lines.append(f"\t... {shared} more")
    text = "\n".join(lines) + "\n"
    cause = exc.fields.get(CAUSE)
    if isinstance(cause, JObject) and cause is not exc:
        text += "Caused by: " + stack_trace(cause, frames)
    return text


class JavaThrow(Exception):
    """A Java exception in flight; `exception` is the Throwable object a catch handler receives."""

    def __init__(self, java_class: str, message: str | None = None, exception: JObject | None = None):
        self.exception = exception or JObject(class_descriptor(java_class), {MESSAGE: message})
        super().__init__(describe(self.exception))
