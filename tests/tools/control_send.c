/* control_send SOCKET LINE: launcher/policy_socket_client.c's proxy_control_send,
 * for the integration tests. Prints the reply; exit 0 ok, 3 error reply,
 * 1 could not talk to the socket. */
#include <errno.h>
#include <stdio.h>

#include "../../launcher/policy_socket_client.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: control_send SOCKET LINE\n");
		return 2;
	}
	char reply[4096];
	int r = proxy_control_send(argv[1], argv[2], reply, sizeof(reply));
	printf("%s\n", reply);
	return r == 0 ? 0 : r == -EPROTO ? 3 : 1;
}
