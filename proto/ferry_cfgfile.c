/* placeholder: filled in by its owner */
typedef int ferry_cfgfile_placeholder;
