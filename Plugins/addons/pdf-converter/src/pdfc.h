/*
 * pdfc.h - what the pieces of the pdf-converter add-on share: the limits
 * of the pixel stream (Qubes' values) and the two entry points.
 *
 * The wire format of qubes.PdfConvert, disposable -> caller, is pixels
 * only, so nothing of the untrusted PDF's structure can reach the caller:
 *   "<pagecount>\n", then per page "<W> <H>\n" and exactly W*H*3 bytes of
 *   8-bit RGB, rows top to bottom; nothing after the last page.
 */
#ifndef PDFC_H
#define PDFC_H

#include "addon_common.h"

#define PDFC_SERVICE "qubes.PdfConvert"
#define PDFC_COMMAND "ody-convert-pdf"

#define PDFC_MAX_PAGES 10000u
#define PDFC_MAX_DIMENSION 10000u
/* The disposable refuses bigger PDFs before rendering anything. */
#define PDFC_MAX_PDF_BYTES (512ull << 20)

/* Rendering resolution (config "resolution"): both sides read it, the
 * disposable to render, the caller to turn pixels back into points. */
#define PDFC_DEFAULT_DPI 100u
#define PDFC_MIN_DPI 10u
#define PDFC_MAX_DPI 1200u
#define PDFC_DEFAULT_RENDERER "/usr/bin/pdftocairo"

/* The configured resolution: 0 and *dpi, or -1 with a message on err_fd. */
int pdfc_resolution(ody_addon *a, int err_fd, unsigned *dpi);

/* convert_command.c: ody-convert-pdf; returns the exit status. */
int pdfc_run_command(ody_addon *a, const ody_command_call *call);

/* render_service.c: qubes.PdfConvert in the disposable; the exit status. */
int pdfc_run_service(ody_addon *a, const ody_service_call *call);

#endif
