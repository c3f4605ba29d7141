package model

import (
	"errors"
	"fmt"
)

// Level is the level of a region in the GB/T 2260 hierarchy.
type Level int

// Region levels.
const (
	LevelInvalid  Level = 0
	LevelProvince Level = 1 // PP0000
	LevelCity     Level = 2 // PPCC00 (including 市辖区 and 省直辖县级行政区划 groupings)
	LevelCounty   Level = 3 // PPCCDD: county, county-level city, district
)

// String returns "province", "city" or "county".
func (l Level) String() string {
	switch l {
	case LevelProvince:
		return "province"
	case LevelCity:
		return "city"
	case LevelCounty:
		return "county"
	}
	return "invalid"
}

// provinceCodes are the first two digits of the GB/T 2260 province-level divisions.
func validProvince(pp string) bool {
	switch pp {
	case "11", "12", "13", "14", "15", // 北京 天津 河北 山西 内蒙古
		"21", "22", "23", // 辽宁 吉林 黑龙江
		"31", "32", "33", "34", "35", "36", "37", // 上海 江苏 浙江 安徽 福建 江西 山东
		"41", "42", "43", "44", "45", "46", // 河南 湖北 湖南 广东 广西 海南
		"50", "51", "52", "53", "54", // 重庆 四川 贵州 云南 西藏
		"61", "62", "63", "64", "65", // 陕西 甘肃 青海 宁夏 新疆
		"71", "81", "82": // 台湾 香港 澳门
		return true
	}
	return false
}

// ParseRegionCode checks the syntax of a GB/T 2260 code and returns its level.
func ParseRegionCode(code string) (Level, error) {
	if len(code) != 6 {
		return LevelInvalid, fmt.Errorf("%q is not a 6-digit GB/T 2260 code", code)
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return LevelInvalid, fmt.Errorf("%q is not a 6-digit GB/T 2260 code", code)
		}
	}
	if !validProvince(code[:2]) {
		return LevelInvalid, fmt.Errorf("%q: %s is not a province code", code, code[:2])
	}
	switch {
	case code[2:] == "0000":
		return LevelProvince, nil
	case code[4:] == "00":
		return LevelCity, nil
	default:
		return LevelCounty, nil
	}
}

// ParentCode returns the code of the region containing code ("" for a province).
func ParentCode(code string) string {
	lvl, err := ParseRegionCode(code)
	if err != nil {
		return ""
	}
	switch lvl {
	case LevelCity:
		return code[:2] + "0000"
	case LevelCounty:
		return code[:4] + "00"
	}
	return ""
}

// RegionContains reports whether region outer contains region inner (or is it).
func RegionContains(outer, inner string) bool {
	lvl, err := ParseRegionCode(outer)
	if err != nil || len(inner) != 6 {
		return false
	}
	switch lvl {
	case LevelProvince:
		return inner[:2] == outer[:2]
	case LevelCity:
		return inner[:4] == outer[:4]
	default:
		return inner == outer
	}
}

// AncestorAt returns the ancestor of a county or city code at a level (the code itself at its
// own level).
func AncestorAt(code string, lvl Level) (string, error) {
	own, err := ParseRegionCode(code)
	if err != nil {
		return "", err
	}
	if lvl > own {
		return "", errors.New("no ancestor below the region's own level")
	}
	switch lvl {
	case LevelProvince:
		return code[:2] + "0000", nil
	case LevelCity:
		return code[:4] + "00", nil
	case LevelCounty:
		return code, nil
	}
	return "", errors.New("invalid level")
}
