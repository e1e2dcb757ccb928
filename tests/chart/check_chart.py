#!/usr/bin/env python3
"""Static checks of the Helm chart in charts/ipguard, with the Python standard library only.

Helm is not needed: this reads the chart's files and checks what can be checked without
rendering it.

  1. crds/*.yaml and charts/ipguard/crds/*.yaml are the same set of files, byte for byte.
  2. values.schema.json is valid JSON, strict at the top (additionalProperties: false), and
     values.yaml is valid against it (type, properties, additionalProperties, enum, items,
     required, minimum/maximum, minLength/maxLength, pattern).
  3. Every .Values.<path> a template reads is declared in values.schema.json (a typo in a
     template would otherwise render an empty string silently).
  4. No template calls a function whose result changes from one render to the next
     (randAlphaNum, genCA, now, uuidv4, lookup, ...): the chart must render the same
     manifests every time for the same values, or GitOps tools show a diff forever.
  5. Every template's {{ and }} pair up (string literals and comments inside actions are
     skipped).
  6. Chart.yaml has apiVersion v2, name, version, appVersion and kubeVersion.
  7. Every flag templates/deployment.yaml passes to the manager is one `ipguard manager`
     declares (its usage text in cmd/manager.cc); and each value that stands for a manager
     flag with the manager's own default (webhook.maxConnections, webhook.maxHoldsPerRequester)
     has that default in values.yaml, and the template passes the flag only when the value
     differs from it (so the default Deployment stays the same).

Usage: check_chart.py [REPO_ROOT]   (default: two levels above this file)
Exit 0 when every check passes, 1 when one fails (each failure names its file), 2 when
the chart cannot be found.
"""

import json
import os
import re
import sys

# Functions whose output differs between two renders of the same values.
NON_DETERMINISTIC = (
    "randAlphaNum", "randAlpha", "randNumeric", "randAscii", "randBytes", "randInt",
    "genCA", "genCAWithKey", "genPrivateKey", "genSelfSignedCert", "genSelfSignedCertWithKey",
    "genSignedCert", "genSignedCertWithKey", "now", "unixEpoch", "uuidv4", "lookup",
    "htpasswd", "encryptAES", "shuffle",
)


# --------------------------------------------------------------------------------------
# A small YAML reader: enough for values.yaml and Chart.yaml (block mappings and
# sequences, plain and quoted scalars, flow collections, block scalars, comments). It is
# not a general YAML parser; it refuses what it does not understand rather than guess.
# --------------------------------------------------------------------------------------

class YamlError(Exception):
    pass


def _strip_comment(line):
    """Removes a trailing # comment that is not inside quotes."""
    out, quote = [], None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            out.append(c)
            if c == quote:
                if quote == "'" and i + 1 < len(line) and line[i + 1] == "'":
                    out.append("'")
                    i += 1
                else:
                    quote = None
            elif c == "\\" and quote == '"' and i + 1 < len(line):
                out.append(line[i + 1])
                i += 1
        elif c in "'\"" and (not out or out[-1] in " \t[{,:-"):
            quote = c
            out.append(c)
        elif c == "#" and (not out or out[-1] in " \t"):
            break
        else:
            out.append(c)
        i += 1
    return "".join(out).rstrip()


def _scalar(text):
    t = text.strip()
    if t == "":
        return None
    if t[0] == '"':
        if len(t) < 2 or t[-1] != '"':
            raise YamlError("unterminated double-quoted string: " + t)
        return json.loads(t)
    if t[0] == "'":
        if len(t) < 2 or t[-1] != "'":
            raise YamlError("unterminated single-quoted string: " + t)
        return t[1:-1].replace("''", "'")
    if t[0] in "[{":
        value, rest = _flow(t, 0)
        if t[rest:].strip():
            raise YamlError("text after a flow collection: " + t)
        return value
    if t in ("null", "~", "Null", "NULL"):
        return None
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if re.fullmatch(r"[-+]?[0-9]+", t):
        return int(t)
    if re.fullmatch(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?", t):
        return float(t)
    if t[0] in "&*!|>%@`":
        raise YamlError("unsupported YAML construct: " + t)
    return t


def _flow(s, i):
    """Parses a flow collection starting at s[i]; returns (value, index after it)."""
    def skip(j):
        while j < len(s) and s[j] in " \t":
            j += 1
        return j

    def token(j, stops):
        j = skip(j)
        if j < len(s) and s[j] in "[{":
            return _flow(s, j)
        if j < len(s) and s[j] in "'\"":
            q = s[j]
            k = j + 1
            while k < len(s):
                if s[k] == "\\" and q == '"':
                    k += 2
                    continue
                if s[k] == q:
                    if q == "'" and k + 1 < len(s) and s[k + 1] == "'":
                        k += 2
                        continue
                    break
                k += 1
            if k >= len(s):
                raise YamlError("unterminated string in flow collection: " + s)
            return _scalar(s[j:k + 1]), k + 1
        k = j
        while k < len(s) and s[k] not in stops:
            k += 1
        return _scalar(s[j:k]), k

    if s[i] == "[":
        out, j = [], skip(i + 1)
        if j < len(s) and s[j] == "]":
            return out, j + 1
        while True:
            v, j = token(j, ",]")
            out.append(v)
            j = skip(j)
            if j < len(s) and s[j] == ",":
                j += 1
                continue
            if j < len(s) and s[j] == "]":
                return out, j + 1
            raise YamlError("bad flow sequence: " + s)
    out, j = {}, skip(i + 1)
    if j < len(s) and s[j] == "}":
        return out, j + 1
    while True:
        k, j = token(j, ":,}")
        j = skip(j)
        if j >= len(s) or s[j] != ":":
            raise YamlError("bad flow mapping: " + s)
        v, j = token(j + 1, ",}")
        out[str(k)] = v
        j = skip(j)
        if j < len(s) and s[j] == ",":
            j += 1
            continue
        if j < len(s) and s[j] == "}":
            return out, j + 1
        raise YamlError("bad flow mapping: " + s)


_KEY = re.compile(r"""^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s'"#\[\]{},:][^:#]*?)\s*:(?:\s+(.*))?$""")


def load_yaml(text):
    """Parses one YAML document made of block collections and scalars."""
    raw = [line.rstrip("\r") for line in text.split("\n")]
    lines = []  # (line number, indent, text without comment)
    for n, line in enumerate(raw, start=1):
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise YamlError("line %d: tab in indentation" % n)
        stripped = _strip_comment(line)
        if stripped.strip() in ("", "---"):
            continue
        if stripped.strip() == "...":
            break
        lines.append((n, len(stripped) - len(stripped.lstrip()), stripped.strip()))
    pos = [0]

    def block_scalar(indicator, lineno, parent_indent):
        # The lines after `lineno` indented deeper than the parent, kept (|) or folded (>).
        body, k, indent = [], lineno, None
        while k < len(raw):
            line = raw[k]
            if line.strip() == "":
                body.append("")
                k += 1
                continue
            ind = len(line) - len(line.lstrip())
            if ind <= parent_indent:
                break
            if indent is None:
                indent = ind
            body.append(line[indent:])
            k += 1
        while pos[0] < len(lines) and lines[pos[0]][0] <= k:
            pos[0] += 1
        while body and body[-1] == "":
            body.pop()
        joined = (" " if indicator.startswith(">") else "\n").join(body)
        return joined if indicator.endswith("-") else joined + "\n"

    def value_after(rest, lineno, indent):
        if rest:
            return block_scalar(rest, lineno, indent) if rest[0] in "|>" else _scalar(rest)
        if pos[0] < len(lines):
            _, ind, text = lines[pos[0]]
            if ind > indent or (ind == indent and (text == "-" or text.startswith("- "))):
                return node(ind)
        return None

    def node(indent):
        _, _, first = lines[pos[0]]
        if first == "-" or first.startswith("- "):
            out = []
            while pos[0] < len(lines):
                lineno, ind, text = lines[pos[0]]
                if ind < indent:
                    break
                if ind > indent:
                    raise YamlError("line %d: bad indentation" % lineno)
                if not (text == "-" or text.startswith("- ")):
                    break
                pos[0] += 1
                item = text[1:].lstrip()
                if item == "":
                    out.append(value_after(None, lineno, indent))
                elif _KEY.match(item):
                    # "- key: value" opens a mapping whose keys line up with "key".
                    sub = indent + len(text) - len(item)
                    lines.insert(pos[0], (lineno, sub, item))
                    out.append(node(sub))
                else:
                    out.append(_scalar(item))
            return out
        out = {}
        while pos[0] < len(lines):
            lineno, ind, text = lines[pos[0]]
            if ind < indent or text == "-" or text.startswith("- "):
                if ind > indent:
                    raise YamlError("line %d: bad indentation" % lineno)
                break
            if ind > indent:
                raise YamlError("line %d: bad indentation" % lineno)
            m = _KEY.match(text)
            if not m:
                raise YamlError("line %d: expected 'key: value', got %r" % (lineno, text))
            key = m.group(1).strip()
            if key[0] in "'\"":
                key = _scalar(key)
            if key in out:
                raise YamlError("line %d: duplicate key %r" % (lineno, key))
            pos[0] += 1
            out[key] = value_after(m.group(2), lineno, indent)
        return out

    if not lines:
        return None
    result = node(lines[0][1])
    if pos[0] != len(lines):
        raise YamlError("line %d: unexpected text %r" % (lines[pos[0]][0], lines[pos[0]][2]))
    return result


# --------------------------------------------------------------------------------------
# A small JSON Schema validator: the keywords values.schema.json uses.
# --------------------------------------------------------------------------------------

def _type_ok(value, t):
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "null":
        return value is None
    raise ValueError("unknown type %r in schema" % t)


def validate(value, schema, path="values"):
    """Returns a list of error strings, each starting with the path of the value."""
    errors = []
    if not isinstance(schema, dict):
        return errors
    types = schema.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        if not any(_type_ok(value, t) for t in types):
            return ["%s: %r is not of type %s" % (path, value, " or ".join(types))]
    if "enum" in schema:
        # JSON Schema compares booleans and numbers by type, unlike Python's True == 1.
        if not any(value == e and type(value) is type(e) for e in schema["enum"]):
            errors.append("%s: %r is not one of %s" % (path, value, schema["enum"]))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for req in schema.get("required", []):
            if req not in value:
                errors.append("%s: required key %r is missing" % (path, req))
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                errors += validate(v, props[k], "%s.%s" % (path, k))
            elif extra is False:
                errors.append("%s: key %r is not allowed by the schema (allowed: %s)" %
                              (path, k, ", ".join(sorted(props)) or "none"))
            elif isinstance(extra, dict):
                errors += validate(v, extra, "%s.%s" % (path, k))
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            errors += validate(v, schema["items"], "%s[%d]" % (path, i))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append("%s: %r is below the minimum %r" % (path, value, schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            errors.append("%s: %r is above the maximum %r" % (path, value, schema["maximum"]))
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append("%s: %r is not above %r" % (path, value, schema["exclusiveMinimum"]))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append("%s: %r is shorter than %d" % (path, value, schema["minLength"]))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append("%s: %r is longer than %d" % (path, value, schema["maxLength"]))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append("%s: %r does not match %s" % (path, value, schema["pattern"]))
    return errors


def schema_has_path(schema, parts):
    """True when .Values.<parts...> is declared: every step is a property, or the walk
    reaches a free-form object (no properties listed) where anything goes."""
    node = schema
    for p in parts:
        if not isinstance(node, dict):
            return False
        props = node.get("properties")
        if props is None:
            return node.get("type") in (None, "object") or "object" in node.get("type", [])
        if p in props:
            node = props[p]
            continue
        return node.get("additionalProperties", True) is not False
    return True


# --------------------------------------------------------------------------------------
# Template scanning: the actions {{ ... }} of a Go template, with their strings and
# comments skipped.
# --------------------------------------------------------------------------------------

def template_actions(text):
    """Yields (line, code) for each action, code without strings and comments.
    Raises ValueError naming the line of an unclosed {{ or a stray }}."""
    i, line = 0, 1
    while True:
        open_at = text.find("{{", i)
        close_at = text.find("}}", i)
        if close_at != -1 and (open_at == -1 or close_at < open_at):
            raise ValueError("line %d: '}}' without a matching '{{'" %
                             (line + text.count("\n", i, close_at)))
        if open_at == -1:
            return
        line += text.count("\n", i, open_at)
        start_line = line
        j = open_at + 2
        code = []
        while True:
            if j >= len(text):
                raise ValueError("line %d: '{{' is never closed" % start_line)
            c = text[j]
            if text.startswith("}}", j):
                break
            if text.startswith("/*", j):
                end = text.find("*/", j + 2)
                if end == -1:
                    raise ValueError("line %d: comment '/*' is never closed" % start_line)
                line += text.count("\n", j, end)
                j = end + 2
                continue
            if c == '"':
                k = j + 1
                while k < len(text) and text[k] != '"':
                    if text[k] == "\n":
                        raise ValueError("line %d: string is not closed on its line" % line)
                    k += 2 if text[k] == "\\" else 1
                j = k + 1
                code.append(' "" ')
                continue
            if c == "`":
                end = text.find("`", j + 1)
                if end == -1:
                    raise ValueError("line %d: raw string '`' is never closed" % line)
                line += text.count("\n", j, end)
                j = end + 1
                code.append(" `` ")
                continue
            if c == "'":
                end = text.find("'", j + 1)
                if end == -1:
                    raise ValueError("line %d: character constant is never closed" % line)
                j = end + 1
                code.append(" '' ")
                continue
            if c == "\n":
                line += 1
            code.append(c)
            j += 1
        yield start_line, "".join(code)
        i = j + 2


# --------------------------------------------------------------------------------------
# The checks.
# --------------------------------------------------------------------------------------

class Report:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, ok, file, message):
        if ok:
            self.passed += 1
        else:
            self.failures.append("%s: %s" % (file, message))
        return ok

    def fail(self, file, message):
        return self.check(False, file, message)


def rel(root, path):
    return os.path.relpath(path, root)


def check_crds(root, chart, report):
    src_dir = os.path.join(root, "crds")
    dst_dir = os.path.join(chart, "crds")
    if not os.path.isdir(dst_dir):
        report.fail(rel(root, dst_dir), "missing: copy crds/*.yaml there (cp crds/*.yaml %s/)" %
                    rel(root, dst_dir))
        return
    src = sorted(f for f in os.listdir(src_dir) if f.endswith((".yaml", ".yml")))
    dst = sorted(f for f in os.listdir(dst_dir) if not f.startswith("."))
    report.check(bool(src), "crds/", "no CRD files found")
    for f in sorted(set(src) - set(dst)):
        report.fail(rel(root, os.path.join(dst_dir, f)),
                    "missing: crds/%s has no copy in the chart (cp crds/%s %s/)" % (f, f, rel(root, dst_dir)))
    for f in sorted(set(dst) - set(src)):
        report.fail(rel(root, os.path.join(dst_dir, f)),
                    "is not in crds/: the chart's CRDs must be exactly crds/*.yaml")
    for f in sorted(set(src) & set(dst)):
        with open(os.path.join(src_dir, f), "rb") as a, open(os.path.join(dst_dir, f), "rb") as b:
            same = a.read() == b.read()
        report.check(same, rel(root, os.path.join(dst_dir, f)),
                     "differs from crds/%s; the chart's copy must be identical (cp crds/%s %s/)" %
                     (f, f, rel(root, dst_dir)))


def load_yaml_mapping(root, chart, filename, report):
    """The mapping in chart/filename, or None after reporting why there is none."""
    path = os.path.join(chart, filename)
    name = rel(root, path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = load_yaml(f.read())
    except (OSError, YamlError) as e:
        report.fail(name, "cannot be read: %s" % e)
        return None
    if not report.check(isinstance(doc, dict), name, "is not a mapping"):
        return None
    return doc


def check_chart_yaml(root, chart, report):
    name = rel(root, os.path.join(chart, "Chart.yaml"))
    meta = load_yaml_mapping(root, chart, "Chart.yaml", report)
    if meta is None:
        return
    report.check(meta.get("apiVersion") == "v2", name, "apiVersion must be v2")
    for key in ("name", "version", "appVersion", "kubeVersion"):
        report.check(isinstance(meta.get(key), str) and meta.get(key) != "", name,
                     "%s is missing (a non-empty string is required)" % key)


def load_schema(root, chart, report):
    path = os.path.join(chart, "values.schema.json")
    name = rel(root, path)
    try:
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
    except OSError as e:
        report.fail(name, "cannot be read: %s" % e)
        return None
    except json.JSONDecodeError as e:
        report.fail(name, "is not valid JSON: %s" % e)
        return None
    if not report.check(isinstance(schema, dict) and schema.get("type") == "object", name,
                        "the top-level schema must be of type object"):
        return None
    report.check(schema.get("additionalProperties") is False, name,
                 "the top level must say additionalProperties: false, so that a misspelt value is refused")
    return schema


def check_values(root, chart, schema, report):
    name = rel(root, os.path.join(chart, "values.yaml"))
    values = load_yaml_mapping(root, chart, "values.yaml", report)
    if values is None or schema is None:
        return
    errors = validate(values, schema)
    report.check(not errors, name, "does not match values.schema.json:\n    " + "\n    ".join(errors))


def check_templates(root, chart, schema, report):
    tdir = os.path.join(chart, "templates")
    if not report.check(os.path.isdir(tdir), rel(root, tdir), "missing"):
        return
    banned = re.compile(r"(?<![\w.$])(%s)(?!\w)" % "|".join(NON_DETERMINISTIC))
    values_ref = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
    files = []
    for dirpath, _, names in os.walk(tdir):
        for n in names:
            if n.endswith((".yaml", ".yml", ".tpl", ".txt", ".json")):
                files.append(os.path.join(dirpath, n))
    report.check(bool(files), rel(root, tdir), "has no templates")
    for path in sorted(files):
        name = rel(root, path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            actions = list(template_actions(text))
        except ValueError as e:
            report.fail(name, "unbalanced template delimiters: %s" % e)
            continue
        report.passed += 1
        bad = []
        unknown = []
        for line, code in actions:
            for m in banned.finditer(code):
                bad.append("line %d: %s" % (line, m.group(1)))
            if schema is not None:
                for m in values_ref.finditer(code):
                    parts = m.group(1).strip(".").split(".")
                    if not schema_has_path(schema, parts):
                        unknown.append("line %d: .Values.%s" % (line, ".".join(parts)))
        report.check(not bad, name,
                     "calls a function whose result changes on every render (the chart must render "
                     "the same output for the same values): " + ", ".join(bad))
        report.check(not unknown, name,
                     "reads values that values.schema.json does not declare (a typo?): " + ", ".join(unknown))


# Values that stand for a manager flag and default to the manager's own default; the
# Deployment passes the flag only when the value differs.
MANAGER_DEFAULTS = (
    (("webhook", "maxConnections"), "--max-connections"),
    (("webhook", "maxHoldsPerRequester"), "--max-holds-per-requester"),
)


def manager_usage(root, report):
    """{flag: its usage text (the flag's line and its continuation lines)} from the usage
    string in cmd/manager.cc, or None after reporting why there is none."""
    path = os.path.join(root, "cmd", "manager.cc")
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError as e:
        report.fail("cmd/manager.cc", "cannot be read (the manager's flags are declared there): %s" % e)
        return None
    usage, current = {}, None
    for line in source.split("\n"):
        m = re.match(r'\s*"(.*?)(?:\\n)?"\s*;?\s*$', line)
        if not m:
            current = None
            continue
        flag = re.match(r"\s*(--[a-z][a-z0-9-]*)", m.group(1))
        if flag and m.group(1).startswith("  --"):
            current = flag.group(1)
            usage[current] = m.group(1)
        elif current is not None and m.group(1).startswith("   "):
            usage[current] += " " + m.group(1).strip()
        else:
            current = None
    report.check(bool(usage), "cmd/manager.cc", "no usage text with flags found")
    return usage


def check_manager_flags(root, chart, values, report):
    usage = manager_usage(root, report)
    path = os.path.join(chart, "templates", "deployment.yaml")
    name = rel(root, path)
    try:
        with open(path, encoding="utf-8") as f:
            template = f.read()
    except OSError as e:
        report.fail(name, "cannot be read: %s" % e)
        return
    if usage is None:
        return
    passed = re.findall(r"^\s*- (--[a-z][a-z0-9-]*)", template, re.M)
    report.check(bool(passed), name, "passes no manager flags")
    unknown = sorted(set(f for f in passed if f not in usage))
    report.check(not unknown, name, "passes flags `ipguard manager` does not declare (cmd/manager.cc): " +
                 ", ".join(unknown))
    for parts, flag in MANAGER_DEFAULTS:
        value = values
        for p in parts:
            value = value.get(p) if isinstance(value, dict) else None
        dotted = ".".join(parts)
        m = re.search(r"\(default ([0-9]+)\)", usage.get(flag, ""))
        if not report.check(m is not None, "cmd/manager.cc", "no usage line of %s with its (default N)" % flag):
            continue
        default = int(m.group(1))
        report.check(value == default, rel(root, os.path.join(chart, "values.yaml")),
                     "%s is %r; it must be the manager's %s default, %d" % (dotted, value, flag, default))
        guard = re.search(r"\{\{-? with \.Values\.%s \}\}\s*\{\{-? if ne \(int \.\) ([0-9]+) \}\}\s*- %s\n" %
                          (re.escape(dotted), re.escape(flag)), template)
        report.check(guard is not None and int(guard.group(1)) == default, name,
                     "must pass %s only when .Values.%s is not the manager's default %d "
                     "({{- with .Values.%s }}{{- if ne (int .) %d }} - %s ...)" %
                     (flag, dotted, default, dotted, default, flag))


def main(argv):
    root = os.path.abspath(argv[1] if len(argv) > 1 else
                           os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    chart = os.path.join(root, "charts", "ipguard")
    if not os.path.isdir(chart):
        print("check_chart: no chart at %s" % chart, file=sys.stderr)
        return 2
    report = Report()
    check_crds(root, chart, report)
    check_chart_yaml(root, chart, report)
    schema = load_schema(root, chart, report)
    check_values(root, chart, schema, report)
    check_templates(root, chart, schema, report)
    values = load_yaml_mapping(root, chart, "values.yaml", Report())
    if values is not None:
        check_manager_flags(root, chart, values, report)
    for f in report.failures:
        print("check_chart: FAIL %s" % f)
    print("check_chart: %d passed, %d failed" % (report.passed, len(report.failures)))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
