# Compiles the console's files into C (cloud-bridge/cloud_http_page.h):
#   cmake -DOUT=cloud_http_assets.c -DDIR=console -P embed.cmake
# Each entry: URL path, Content-Type ("@" for ";"), file name under DIR.
set(ASSETS
    "/|text/html@ charset=utf-8|index.html"
    "/console.css|text/css@ charset=utf-8|console.css"
    "/console.js|text/javascript@ charset=utf-8|console.js")

set(body "/* Generated from cloud-bridge/console/ by embed.cmake: do not edit. */\n")
string(APPEND body "#include \"cloud_http_page.h\"\n\n")
set(table "")
set(i 0)
foreach(asset ${ASSETS})
    string(REPLACE "|" ";" parts "${asset}")
    list(GET parts 0 url)
    list(GET parts 1 type)
    list(GET parts 2 file)
    string(REPLACE "@" ";" type "${type}")
    file(READ "${DIR}/${file}" hex HEX)
    string(LENGTH "${hex}" hexlen)
    math(EXPR len "${hexlen} / 2")
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
    string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
    string(APPEND body "static const unsigned char asset_${i}[${len}] = {\n${bytes}};\n\n")
    string(APPEND table "    {\"${url}\", \"${type}\", asset_${i}, ${len}},\n")
    math(EXPR i "${i} + 1")
endforeach()
string(APPEND body "const struct cloud_http_asset cloud_http_assets[] = {\n${table}")
string(APPEND body "    {0, 0, 0, 0},\n};\n")
file(WRITE "${OUT}.tmp" "${body}")
file(RENAME "${OUT}.tmp" "${OUT}")
