vars.count = (vars.count or 0) + 1
log("counted", vars.count)
return vars.count * 10, answer
