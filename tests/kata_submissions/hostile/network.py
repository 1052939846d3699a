# Issue 12, problem 4: "no TCP" bypassed with MPTCP; UDP and Unix sockets open. Tries to reach
# listeners the tests open on the grader's machine, and reports what connected.
import socket

TCP_PORT, UDP_PORT, UNIX_PATH = 47914, 47913, "/tmp/lthkit-hostile-test.sock"


def attempts():
    results = {}
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262) as mptcp:  # IPPROTO_MPTCP
            mptcp.settimeout(2)
            mptcp.connect(("127.0.0.1", TCP_PORT))
            mptcp.sendall(b"mptcp was here")
        results["mptcp"] = "yes"
    except OSError as error:
        results["mptcp"] = f"no ({type(error).__name__})"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"udp was here", ("127.0.0.1", UDP_PORT))
        results["udp"] = "sent"
    except OSError as error:
        results["udp"] = f"no ({type(error).__name__})"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
            unix.settimeout(2)
            unix.connect(UNIX_PATH)
            unix.sendall(b"unix was here")
        results["unix"] = "yes"
    except OSError as error:
        results["unix"] = f"no ({type(error).__name__})"
    return results


def find_winning_ticket_step(model, initial_state_dict, prune_amount=0.2):
    raise RuntimeError("network: " + ", ".join(f"{key}={value}" for key, value in attempts().items()))
