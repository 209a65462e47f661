/* split_gpg.h - the two ends of split GPG, called from the add-on's ops. */
#ifndef SPLIT_GPG_H
#define SPLIT_GPG_H

#include "addon_common.h"

/* qubes.Gpg in the vault: returns the service's exit status. */
int split_gpg_serve(ody_addon *a, const ody_service_call *call);

/* ody-gpg in a domain: returns the command's exit status (gpg's, or 2 for a
 * refused option, 1 for a refused consent, 126/127 from policy). */
int split_gpg_client(ody_addon *a, const ody_command_call *call);

#endif
