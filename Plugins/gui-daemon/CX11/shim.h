/* Xlib for Swift (apt: libx11-dev). Xlib is reached directly from Swift;
 * nothing here but the headers. */
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/Xatom.h>
#include <X11/keysym.h>
