"""Developer tools: they change files in the checkout and are not part of the installed hub."""
