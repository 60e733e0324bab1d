"""Least privilege on Kafka: the ACLs of each service's principal (`User:<service>`, a SCRAM-SHA-512 user), from the
topic registry. A service writes only the topics it owns and the dead-letter topics of those it consumes, reads
only the topics it consumes, and joins only consumer groups named after it (`<service>.<consumer>`); it may
create the topics it uses (it does at start). Anything else — another service's topic, group or the cluster — is
refused by the broker's authorizer (`allow.everyone.if.no.acl.found=false`).

`python -m servicekit.kafka_acls [service ...]` prints the commands that create the principals and grant these
ACLs, for an operator holding the brokers' admin credentials (docs/runbook.md, "Kafka principals and ACLs").
"""

import argparse
import shlex

from contracts import TOPICS, topics_read_by, topics_written_by

SERVICES = tuple(sorted({topic.owner for topic in TOPICS.values()} | {c for t in TOPICS.values() for c in t.consumers}))


def _operations(*names: str) -> list[str]:
    return [argument for name in names for argument in ("--operation", name)]


def _topics(names: list[str]) -> list[str]:
    return [argument for name in names for argument in ("--topic", name)]


def acl_arguments(service: str) -> list[list[str]]:
    """The ACLs of `service`'s principal, each as the arguments that follow `kafka-acls.sh ... --add`
    (Kafka's org.apache.kafka.tools.AclCommand)."""
    principal = ["--allow-principal", f"User:{service}"]
    grants = []
    if written := topics_written_by(service):
        grants.append([*principal, *_operations("Write", "Describe", "Create"), *_topics(written)])
    if read := topics_read_by(service):
        grants.append([*principal, *_operations("Read", "Describe", "Create"), *_topics(read)])
        grants.append(
            [
                *principal,
                *_operations("Read", "Describe"),
                "--group",
                f"{service}.",
                "--resource-pattern-type",
                "prefixed",
            ]
        )
    return grants


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m servicekit.kafka_acls", description=__doc__.split("\n\n")[0])
    parser.add_argument("services", nargs="*", metavar="service", help=f"some of {', '.join(SERVICES)}; default all")
    args = parser.parse_args()
    if unknown := set(args.services) - set(SERVICES):
        parser.error(f"unknown service(s): {', '.join(sorted(unknown))}")
    connection = '--bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --command-config "$KAFKA_ADMIN_CONFIG"'
    for service in args.services or SERVICES:
        password = f"${service.upper()}_KAFKA_SASL_PASSWORD"
        print(f"# {service}")
        print(
            f"kafka-configs.sh {connection} --alter --entity-type users --entity-name {service} "
            f'--add-config "SCRAM-SHA-512=[password={password}]"'
        )
        for arguments in acl_arguments(service):
            print(f"kafka-acls.sh {connection} --add {shlex.join(arguments)}")


if __name__ == "__main__":
    main()
