#!/usr/bin/env python3
"""Tests of check_chart.py: it passes on the repository's chart and fails, naming the file,
on each kind of mistake it is meant to catch. Standard library only:

  python3 -m unittest discover -s tests/chart -p 'test_*.py'
"""

import contextlib
import io
import os
import shutil
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_chart  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


class CheckChartTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="check_chart_")
        shutil.copytree(os.path.join(REPO, "crds"), os.path.join(self.root, "crds"))
        shutil.copytree(os.path.join(REPO, "charts"), os.path.join(self.root, "charts"))
        os.makedirs(os.path.join(self.root, "cmd"))
        shutil.copy(os.path.join(REPO, "cmd", "manager.cc"), os.path.join(self.root, "cmd", "manager.cc"))
        self.chart = os.path.join(self.root, "charts", "ipguard")

    def tearDown(self):
        shutil.rmtree(self.root)

    def run_check(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = check_chart.main(["check_chart.py", self.root])
        return code, out.getvalue()

    def edit(self, relpath, old, new):
        path = os.path.join(self.chart, relpath)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self.assertIn(old, text, "test setup: %r not in %s" % (old, relpath))
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new, 1))

    def write(self, relpath, text):
        with open(os.path.join(self.chart, relpath), "w", encoding="utf-8") as f:
            f.write(text)

    def assertFails(self, file_fragment, message_fragment):
        """The check exits 1 and one FAIL entry names the file and says the message."""
        code, out = self.run_check()
        self.assertEqual(code, 1, out)
        entries, current = [], None
        for line in out.splitlines():
            if line.startswith("check_chart: "):
                current = [line] if line.startswith("check_chart: FAIL") else None
                if current is not None:
                    entries.append(current)
            elif current is not None:
                current.append(line)
        self.assertTrue(any(file_fragment in e[0] and message_fragment in "\n".join(e) for e in entries),
                        "expected a failure naming %r with %r, got:\n%s" % (file_fragment, message_fragment, out))

    def test_repository_chart_passes(self):
        code, out = self.run_check()
        self.assertEqual(code, 0, out)
        self.assertIn(" 0 failed", out)

    def test_crd_copy_differs(self):
        name = sorted(os.listdir(os.path.join(self.root, "crds")))[0]
        with open(os.path.join(self.chart, "crds", name), "ab") as f:
            f.write(b"\n")
        self.assertFails("charts/ipguard/crds/" + name, "differs from crds/" + name)

    def test_crd_copy_missing(self):
        name = sorted(os.listdir(os.path.join(self.root, "crds")))[-1]
        os.remove(os.path.join(self.chart, "crds", name))
        self.assertFails("charts/ipguard/crds/" + name, "missing")

    def test_extra_crd_in_chart(self):
        self.write(os.path.join("crds", "extra.yaml"), "kind: Nothing\n")
        self.assertFails("charts/ipguard/crds/extra.yaml", "is not in crds/")

    def test_unknown_value_key(self):
        self.edit("values.yaml", "platform: azurelocal", "platform: azurelocal\nplatfrom: vmware")
        self.assertFails("charts/ipguard/values.yaml", "'platfrom' is not allowed")

    def test_nested_unknown_value_key(self):
        self.edit("values.yaml", "  timeoutSeconds: 10", "  timeoutSeconds: 10\n  timeoutSecond: 5")
        self.assertFails("charts/ipguard/values.yaml", "values.webhook: key 'timeoutSecond'")

    def test_value_outside_enum(self):
        self.edit("values.yaml", "mode: selfSigned", "mode: selfsigned")
        self.assertFails("charts/ipguard/values.yaml", "values.certificates.mode")

    def test_value_of_wrong_type(self):
        self.edit("values.yaml", "replicaCount: 2", 'replicaCount: "2"')
        self.assertFails("charts/ipguard/values.yaml", "values.replicaCount")

    def test_schema_not_json(self):
        self.write("values.schema.json", "{ not json")
        self.assertFails("charts/ipguard/values.schema.json", "is not valid JSON")

    def test_non_deterministic_function(self):
        self.write(os.path.join("templates", "secret.yaml"),
                   "apiVersion: v1\nkind: Secret\ndata:\n  password: {{ randAlphaNum 16 | b64enc }}\n")
        self.assertFails("charts/ipguard/templates/secret.yaml", "randAlphaNum")

    def test_generated_certificate(self):
        self.write(os.path.join("templates", "cert.yaml"),
                   '{{- $ca := genCA "ipguard" 365 }}\ncaBundle: {{ $ca.Cert | b64enc }}\n')
        self.assertFails("charts/ipguard/templates/cert.yaml", "genCA")

    def test_lookup(self):
        self.write(os.path.join("templates", "l.yaml"),
                   '{{- $s := (lookup "v1" "Secret" .Release.Namespace "x") }}\n')
        self.assertFails("charts/ipguard/templates/l.yaml", "lookup")

    def test_banned_names_in_strings_and_text_are_fine(self):
        self.write(os.path.join("templates", "ok.yaml"),
                   '# now and lookup in YAML text are not calls\n'
                   'a: {{ "now lookup randAlphaNum" | quote }}\n'
                   'b: {{ `{{ $labels.now }}` }}\n'
                   'c: {{ .Values.logLevel | default "now" }}\n')
        code, out = self.run_check()
        self.assertEqual(code, 0, out)

    def test_unclosed_action(self):
        self.write(os.path.join("templates", "broken.yaml"), "a: {{ .Values.logLevel\nb: 1\n")
        self.assertFails("charts/ipguard/templates/broken.yaml", "never closed")

    def test_stray_close(self):
        self.write(os.path.join("templates", "broken.yaml"), "a: .Values.logLevel }}\n")
        self.assertFails("charts/ipguard/templates/broken.yaml", "without a matching")

    def test_values_typo_in_template(self):
        self.write(os.path.join("templates", "typo.yaml"), "port: {{ .Values.webhok.port }}\n")
        self.assertFails("charts/ipguard/templates/typo.yaml", ".Values.webhok.port")

    def test_chart_yaml_without_kube_version(self):
        self.edit("Chart.yaml", 'kubeVersion: ">=1.26.0-0"\n', "")
        self.assertFails("charts/ipguard/Chart.yaml", "kubeVersion")

    def test_flag_the_manager_does_not_declare(self):
        self.edit(os.path.join("templates", "deployment.yaml"), "- --workers\n", "- --worker\n")
        self.assertFails("charts/ipguard/templates/deployment.yaml", "does not declare (cmd/manager.cc): --worker")

    def test_limit_default_is_not_the_managers(self):
        self.edit("values.yaml", "  maxConnections: 1000", "  maxConnections: 999")
        self.assertFails("charts/ipguard/values.yaml", "webhook.maxConnections is 999; it must be the manager's --max-connections default, 1000")

    def test_limit_skipped_at_the_wrong_value(self):
        self.edit(os.path.join("templates", "deployment.yaml"), "ne (int .) 256", "ne (int .) 255")
        self.assertFails("charts/ipguard/templates/deployment.yaml",
                         "must pass --max-holds-per-requester only when .Values.webhook.maxHoldsPerRequester is not")

    def test_limit_always_passed(self):
        self.edit(os.path.join("templates", "deployment.yaml"), "{{- if ne (int .) 1000 }}", "{{- if true }}")
        self.assertFails("charts/ipguard/templates/deployment.yaml", "must pass --max-connections only when")

    def test_manager_source_missing(self):
        os.remove(os.path.join(self.root, "cmd", "manager.cc"))
        self.assertFails("cmd/manager.cc", "cannot be read")


class YamlReaderTest(unittest.TestCase):
    def test_reads_what_values_files_use(self):
        text = (
            "# comment\n"
            "a: 1\n"
            "b: \"two # not a comment\"\n"
            "c: 'it''s'\n"
            "d: [x, 'y', 3]\n"
            "e: {}\n"
            "f:\n"
            "  - name: one\n"
            "    n: 1.5\n"
            "  - plain\n"
            "g:\n"
            "- true\n"
            "- ~\n"
            "h: |\n"
            "  line 1\n"
            "  line 2\n"
            "i: >-\n"
            "  folded\n"
            "  text\n"
            "j: text  # trailing comment\n"
        )
        self.assertEqual(check_chart.load_yaml(text), {
            "a": 1, "b": "two # not a comment", "c": "it's", "d": ["x", "y", 3], "e": {},
            "f": [{"name": "one", "n": 1.5}, "plain"], "g": [True, None],
            "h": "line 1\nline 2\n", "i": "folded text", "j": "text",
        })

    def test_refuses_bad_indentation(self):
        with self.assertRaises(check_chart.YamlError):
            check_chart.load_yaml("a:\n    b: 1\n  c: 2\n")

    def test_refuses_duplicate_keys(self):
        with self.assertRaises(check_chart.YamlError):
            check_chart.load_yaml("a: 1\na: 2\n")


class ValidatorTest(unittest.TestCase):
    def test_enum_compares_types(self):
        schema = {"enum": ["auto", True, False]}
        self.assertEqual(check_chart.validate(True, schema), [])
        self.assertEqual(check_chart.validate("auto", schema), [])
        self.assertNotEqual(check_chart.validate(1, schema), [])
        self.assertNotEqual(check_chart.validate("true", schema), [])

    def test_integer_is_not_boolean(self):
        self.assertNotEqual(check_chart.validate(True, {"type": "integer"}), [])
        self.assertEqual(check_chart.validate(3, {"type": ["integer", "string"]}), [])


if __name__ == "__main__":
    unittest.main()
