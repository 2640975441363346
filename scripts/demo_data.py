"""Sample rules, users, retention policies and a legal hold for the demo (scripts/demo.sh).
Idempotent: run it again and it changes nothing but the demo passwords, which it sets back.
Demo only: these passwords are printed and public."""

from __future__ import annotations

from archiver import bootstrap
from archiver.errors import RuleNotFound, UserExists
from archiver.settings import get_settings

PASSWORD = "mailvault demo 2026"
RULES = {
    "finance": ("财务部", ["预算", "报销", "发票", "budget", "invoice"]),
    "sales": ("销售部", ["客户", "报价单", "customer", "quotation", "pricing"]),
    "tech": ("技术部", ["系统", "部署", "安全", "deploy", "maintenance"]),
}
# saved before the mail is imported, so each message is decided as it arrives
POLICIES = [
    {
        "name": "contracts",
        "description": "contracts are kept ten years from the date sent",
        "criteria": {"query": "合同 OR contract"},
        "period": {"amount": 10, "unit": "years"},
        "action": "delete",
    },
    {
        "name": "finance",
        "description": "财务部 mail: seven years",
        "criteria": {"departments": ["财务部"]},
        "period": {"amount": 7, "unit": "years"},
        "action": "delete",
    },
    {
        "name": "default",
        "description": "everything else: five years from arrival",
        "period": {"amount": 5, "unit": "years"},
        "basis": "arrival",
        "action": "delete",
    },
]
MATTER = {"name": "示例案件 · sample matter", "case_number": "DEMO-2026-1", "owners": ["counsel"]}
HOLD = {"name": "报价单 (quotations)", "query": "报价单 OR quotation"}
USERS = [
    ("admin", ["admin"], []),
    ("officer", ["compliance_officer"], []),
    ("counsel", ["legal"], []),
    ("auditor", ["auditor"], []),
    ("lead-finance", ["department_lead"], ["财务部"]),
    ("lead-sales", ["department_lead"], ["销售部"]),
    ("lead-sales-tech", ["department_lead"], ["销售部", "技术部"]),
]


def main() -> None:
    settings = get_settings()
    tagging = bootstrap.tagging(settings)
    for name, (department, words) in RULES.items():
        try:
            tagging.store.rule(name)
        except RuleNotFound:
            when = {"any": [{"field": "words", "op": "contains", "value": w} for w in words]}
            rule = {"name": name, "when": when, "actions": {"set_department": department}}
            tagging.save_rule(rule, "demo")
    retention = bootstrap.retention(settings)
    saved = {v.name for v in retention.policies() if v.saved_by == "demo"}
    for policy in POLICIES:
        if policy["name"] not in saved:
            retention.save_policy(policy, "demo")
    holds = bootstrap.holds(settings)
    if not holds.matters():
        matter = holds.create_matter(MATTER, "demo")
        holds.add_hold(matter.id, HOLD, "demo")
    users = bootstrap.user_directory(settings)
    print(f"{'user':<16} {'roles':<20} {'departments':<14} password")
    for username, roles, departments in USERS:
        try:
            users.add(username, PASSWORD, roles=roles, departments=departments)
        except UserExists:
            users.set_password(username, PASSWORD)
            users.change_roles(username, set_to=roles)
            users.set_departments(username, departments)
        print(f"{username:<16} {','.join(roles):<20} {','.join(departments) or '-':<14} {PASSWORD}")


if __name__ == "__main__":
    main()
