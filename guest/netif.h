/* The guest's interfaces (netif.c): lo up, a dummy eth0 with GUEST_ADDR
 * and the default route through it, over rtnetlink. 0, or a negative
 * errno with *why naming the step, as ip(8) would have been run. */
#ifndef GUEST_NETIF_H
#define GUEST_NETIF_H

int netif_setup(const char **why);

#endif
